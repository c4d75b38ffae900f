"""The GOCACHEPROG loop: one reader, bounded concurrent handlers, one writer.

go issues requests from many builder goroutines and accepts replies in any
order, so a slow shared-tier fetch must never hold up a local hit. The
server must also never die early (go fails the build with "exited
pre-Close"): handler failures become a Miss or an Err reply, and only input
that cannot be answered by ID ends the loop — cleanly, with one line on
stderr.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from gocachemgr.cacheprog import protocol
from gocachemgr.cacheprog.framing import BodyError, FrameReader, FramingError
from gocachemgr.store import ActionEntry
from gocachemgr.store.atomic import AtomicFile
from gocachemgr.store.tiered import TieredStore

if TYPE_CHECKING:
    from gocachemgr.prefetch import Prefetcher
    from gocachemgr.usage import Recorder

MAX_IN_FLIGHT = 64
# Misses remembered until their put, to learn what each entry cost to produce.
MAX_MISSES_TRACKED = 1 << 16


class Server:
    def __init__(
        self,
        store: TieredStore,
        send: Callable[[bytes], None],
        *,
        shared_timeout: float,
        flush_timeout: float,
        log: Callable[[str], object] = sys.stderr.write,
        prefetcher: Prefetcher | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self.store = store
        self._send = send
        self.shared_timeout = shared_timeout
        self.flush_timeout = flush_timeout
        self._log = log
        self.prefetcher = prefetcher  # copies what this workspace used last time
        self.recorder = recorder  # notes what this go command uses, for the next prefetch
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._missed_at: dict[str, int] = {}  # action id -> monotonic ns of go's miss

    def send(self, message: bytes) -> None:
        try:
            self._send(message)
        except (BrokenPipeError, ValueError):
            pass  # go has gone; finishing our own work is all that is left

    async def serve(self, stream: asyncio.StreamReader) -> int:
        """Answer requests until close or end of input; returns the exit status."""
        reader = FrameReader(stream)
        self.store.resume_pending()
        status = 0
        while True:
            try:
                line = await reader.next_line()
                if line is None:
                    break  # EOF is a close: `go list` never sends one
                request = protocol.parse_request(line)
            except (protocol.ProtocolError, FramingError) as exc:
                self._log(
                    f"gocachemgr cacheprog: malformed request ({exc}); stopping. "
                    f"Only a go command should talk to 'gocachemgr cacheprog'.\n"
                )
                status = 2
                break
            if request.command == "close" and request.error is None:
                await self._finish()
                self.send(protocol.close_response(request.id))
                return 0
            if request.command == "put" or request.body_size:
                await self._slots.acquire()
                body = await self._read_put_body(reader, request)
                self._spawn(self._put(request, body))
            elif not self._answer_locally(request, started := time.monotonic_ns()):
                await self._slots.acquire()
                self._spawn(self._get_shared(request, started))
        await self._finish()
        return status

    def _spawn(self, coroutine: object) -> None:
        task = asyncio.ensure_future(coroutine)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()

    async def _finish(self) -> None:
        """Let handlers answer, give uploads a bounded time, keep the counters."""
        if self.prefetcher is not None:
            self.prefetcher.stop()  # drops the queue; a copy under way is abandoned
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.store.flush_uploads, self.flush_timeout)
        if self.recorder is not None:
            await loop.run_in_executor(None, self._save_used)
        await loop.run_in_executor(None, self.store.counters.flush, self.store.local.index)

    async def _read_put_body(
        self, reader: FrameReader, request: protocol.Request
    ) -> AtomicFile | str:
        """Consume the body in stream order: a temp file, or why the put is refused."""
        sink = _BodySink()
        reason = request.error
        if reason is None and request.output_id is not None:
            try:
                sink.file = self.store.local.new_object_file(request.output_id)
            except OSError as exc:
                reason = f"cannot create a local cache file: {exc}"
        if request.body_size:
            try:
                size = await reader.read_body(sink)
                if size != request.body_size:
                    reason = reason or f"body has {size} bytes, BodySize says {request.body_size}"
            except BodyError as exc:
                reason = reason or str(exc)
        reason = reason or sink.error
        if sink.file is None or reason is not None:
            if sink.file is not None:
                sink.file.abort()
            return reason or "put without an OutputID"
        return sink.file

    async def _put(self, request: protocol.Request, body: AtomicFile | str) -> None:
        if isinstance(body, str):
            self.send(protocol.error_response(request.id, f"gocachemgr: {body}"))
            return
        assert request.action_id is not None and request.output_id is not None
        missed = self._missed_at.pop(request.action_id, None)
        cost_ms = 0 if missed is None else max(1, (time.monotonic_ns() - missed) // 1_000_000)
        entry = ActionEntry(request.output_id, request.body_size, time.time_ns(), cost_ms)
        loop = asyncio.get_running_loop()
        try:
            path = await loop.run_in_executor(None, self.store.put, request.action_id, entry, body)
        except Exception as exc:  # VerifyError, OSError, lmdb.Error...: unanswered, go would hang
            body.abort()
            self.send(protocol.error_response(request.id, f"gocachemgr: put failed: {exc}"))
            return
        self.send(protocol.put_response(request.id, path))
        if self.recorder is not None:
            self.recorder.note(request.action_id)

    def _used(self, action_id: str) -> None:
        """A hit: note it for the next prefetch; count it if this run's prefetch brought it."""
        if self.recorder is not None:
            self.recorder.note(action_id)
        if self.prefetcher is not None and action_id in self.prefetcher.fetched:
            self.store.counters.add("prefetch_used")

    def _save_used(self) -> None:
        """Keep the used list; never fails the close (it only steers later prefetches)."""
        assert self.recorder is not None
        try:
            self.recorder.save(publish=self.store.shared_writable, timeout=self.shared_timeout)
        except Exception as exc:  # lmdb trouble: the build itself is done and fine
            self.store.reporter.warn_once(f"cannot record what this build used ({exc!r})")

    def _missed(self, request: protocol.Request, started: int) -> None:
        """Answer a miss; remember when, so the put that follows tells what the work cost."""
        assert request.action_id is not None
        self.send(protocol.miss_response(request.id))
        now = time.monotonic_ns()
        self.store.counters.add("misses")
        self.store.counters.observe_get("miss", now - started)
        if len(self._missed_at) < MAX_MISSES_TRACKED:
            self._missed_at[request.action_id] = now

    def _answer_locally(self, request: protocol.Request, started: int) -> bool:
        """Answer a get in the reader when no shared fetch is needed; False otherwise.

        go's lookups are nearly serial, so every microsecond between request
        and reply is on the build's critical path: errors, local hits and
        local-only misses are answered at once, without a task.
        """
        if request.error is not None or request.action_id is None:
            self.send(protocol.error_response(request.id, request.error or "bad request"))
            return True
        self.store.counters.add("gets")
        try:
            hit = self.store.get_local(request.action_id)
        except Exception as exc:  # a get must never fail the build: a miss will do
            self.store.reporter.warn_once(f"cache lookup failed, treated as a miss ({exc!r})")
            hit = None
        if hit is not None:
            self.send(protocol.hit_response(request.id, hit.entry, hit.disk_path))
            self.store.counters.observe_get("local", time.monotonic_ns() - started)
            self._used(request.action_id)
            return True
        if self.store.shared_readable:
            return False
        self._missed(request, started)
        return True

    async def _get_shared(self, request: protocol.Request, started: int) -> None:
        """A local miss: ask the shared tier off the reader, so local hits go on meanwhile."""
        assert request.action_id is not None
        try:
            hit = await self._fetch_shared(request.action_id)
        except Exception as exc:  # a get must never fail the build: a miss will do
            self.store.reporter.warn_once(f"cache lookup failed, treated as a miss ({exc!r})")
            hit = None
        if hit is None:
            self._missed(request, started)
        else:
            self.send(protocol.hit_response(request.id, hit.entry, hit.disk_path))
            self.store.counters.observe_get("shared", time.monotonic_ns() - started)
            self._used(request.action_id)

    async def _fetch_shared(self, action_id: str):  # type: ignore[no-untyped-def]
        loop = asyncio.get_running_loop()
        prefetch = self.prefetcher
        copying = prefetch.claim(action_id) if prefetch is not None else None
        try:
            if copying is not None:
                # Prefetch is reading this very entry: wait for it instead of reading twice.
                await asyncio.wait_for(asyncio.wrap_future(copying), self.shared_timeout)
            if prefetch is not None and (
                action_id in prefetch.fetched or action_id in prefetch.missing
            ):
                # The prefetch has just read the share for it (and quarantined any
                # damage): its answer stands, a second read would find a stale record.
                return self.store.get_local(action_id)
            future = loop.run_in_executor(self.store.read_pool, self.store.fetch_shared, action_id)
            return await asyncio.wait_for(future, self.shared_timeout)
        except TimeoutError:
            self.store.disable(
                f"shared cache did not answer within {self.shared_timeout:g}s (shared_timeout)"
            )
            return None


class _BodySink:
    """Where a put body goes; never raises, so the stream is always read to the body's end."""

    def __init__(self) -> None:
        self.file: AtomicFile | None = None
        self.error: str | None = None

    def __call__(self, data: bytes) -> None:
        if self.file is None or self.error is not None:
            return  # a refused request: read only to stay in sync
        try:
            self.file.write(data)
        except OSError as exc:
            self.error = f"cannot write the local cache file: {exc}"


def write_all(fd: int) -> Callable[[bytes], None]:
    def send(message: bytes) -> None:
        view = memoryview(message)
        while view:
            view = view[os.write(fd, view) :]

    return send
