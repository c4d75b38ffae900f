"""Helpers for the cacheprog tests: go's exact request bytes and an in-process server.

``go_request`` writes what ``cmd/go/internal/cache/prog.go`` writes: the JSON
object from a ``json.Encoder`` (with its newline), one extra blank line, and
for a put with ``BodySize > 0`` the body as a base64 JSON string on its own
line. ``run_server`` drives the real ``Server`` over real stores in a temp
dir, feeding the input in pieces so reads split wherever the pieces do.
"""

from __future__ import annotations

import asyncio
import base64
import calendar
import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gocachemgr.cacheprog.server import Server
from gocachemgr.index import Index
from gocachemgr.reporter import Reporter
from gocachemgr.stats import Counters
from gocachemgr.store.local import LocalStore
from gocachemgr.store.shared import SharedStore
from gocachemgr.store.tiered import TieredStore


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def action(n: int) -> bytes:
    """A deterministic 32-byte action id."""
    return hashlib.sha256(f"action-{n}".encode()).digest()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def go_request(
    request_id: int,
    command: str,
    action_id: bytes | None = None,
    *,
    body: bytes | None = None,
    output_id: bytes | None = None,
    body_size: int | None = None,
) -> bytes:
    """A request exactly as go frames it (fields in Go's struct order, omitempty)."""
    message: dict[str, object] = {"ID": request_id, "Command": command}
    if action_id is not None:
        message["ActionID"] = b64(action_id)
    if body is not None and output_id is None:
        output_id = sha(body)
    if output_id is not None:
        message["OutputID"] = b64(output_id)
    size = len(body) if body_size is None and body is not None else body_size
    if size:
        message["BodySize"] = size
    out = json.dumps(message, separators=(",", ":")).encode() + b"\n" + b"\n"
    if body:
        out += b'"' + base64.b64encode(body) + b'"\n'
    return out


def open_store(root: Path, shared: SharedStore | None = None) -> TieredStore:
    """Index + LocalStore (GOCACHE at ``root/gocache``) + TieredStore; no warnings printed."""
    index = Index(root / "index")
    local = LocalStore(str(root / "gocache"), index)
    return TieredStore(local, shared, counters=Counters(), reporter=Reporter(None))


def close_store(store: TieredStore) -> None:
    """Close the pools and the index; first let the share's start-up check (which may
    be laying out FORMAT through a temp file in the background) finish."""
    if store.shared is not None:
        store.wait_shared(10)
    store.close()
    store.local.index.close()


@dataclass
class Session:
    """What one ``serve`` call produced."""

    status: int
    sent: list[bytes] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    @property
    def replies(self) -> list[dict[str, object]]:
        return [json.loads(message) for message in self.sent]

    def by_id(self) -> dict[int, dict[str, object]]:
        out: dict[int, dict[str, object]] = {}
        for reply in self.replies:
            assert reply["ID"] not in out, f"two replies for ID {reply['ID']}"
            out[reply["ID"]] = reply  # type: ignore[index]
        return out


def new_server(store: TieredStore, session: Session, *, shared_timeout: float = 5.0) -> Server:
    return Server(
        store,
        session.sent.append,
        shared_timeout=shared_timeout,
        flush_timeout=5.0,
        log=session.log.append,
    )


async def feed(stream: asyncio.StreamReader, pieces: Iterable[bytes], *, eof: bool = True) -> None:
    """Feed pieces one at a time, yielding to the loop so each is read on its own."""
    for piece in pieces:
        if piece:
            stream.feed_data(piece)
        await asyncio.sleep(0)
    if eof:
        stream.feed_eof()


def split_at(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    """``data`` cut at the given offsets (clamped, sorted, duplicates allowed)."""
    points = sorted({min(max(c, 0), len(data)) for c in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


def run_server(
    store: TieredStore,
    pieces: Iterable[bytes],
    *,
    timeout: float = 20.0,
    shared_timeout: float = 5.0,
) -> Session:
    """Run ``Server.serve`` over the pieces then EOF; a hang fails via wait_for."""

    async def main() -> Session:
        session = Session(status=-1)
        server = new_server(store, session, shared_timeout=shared_timeout)
        stream = asyncio.StreamReader(limit=1 << 20)
        feeder = asyncio.ensure_future(feed(stream, pieces))
        session.status = await asyncio.wait_for(server.serve(stream), timeout)
        await feeder
        return session

    return asyncio.run(main())


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob(".tmp-*")]


def objects(gocache: Path) -> dict[str, Path]:
    """The object files the local tier wrote: ``<output id>-d`` under GOCACHE."""
    out = {}
    if gocache.exists():
        for path in gocache.glob("*/*-d"):
            out[path.name[:-2]] = path
    return out


def assert_objects_sound(gocache: Path) -> None:
    """Every stored object hashes to its name and no temp file is left."""
    assert temp_files(gocache) == []
    for name, path in objects(gocache).items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == name, path


def fd_path(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


class Live:
    """A Server serving a stream the test writes to as it goes (``async with Live(store)``)."""

    def __init__(self, store: TieredStore, *, shared_timeout: float = 5.0) -> None:
        self.session = Session(status=-1)
        self.server = Server(
            store,
            self._on_send,
            shared_timeout=shared_timeout,
            flush_timeout=5.0,
            log=self.session.log.append,
        )
        self._waiters: dict[int, asyncio.Future[dict[str, object]]] = {}
        self._task: asyncio.Task[int] | None = None
        self.stream: asyncio.StreamReader | None = None

    def _on_send(self, message: bytes) -> None:
        self.session.sent.append(message)
        reply = json.loads(message)
        waiter = self._waiters.setdefault(reply["ID"], asyncio.get_running_loop().create_future())
        if not waiter.done():
            waiter.set_result(reply)

    async def __aenter__(self) -> Live:
        self.stream = asyncio.StreamReader(limit=1 << 20)
        self._task = asyncio.ensure_future(self.server.serve(self.stream))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None and not self._task.done():
            assert self.stream is not None
            self.stream.feed_eof()
            await asyncio.wait_for(self._task, 20)

    def write(self, data: bytes) -> None:
        assert self.stream is not None
        self.stream.feed_data(data)

    def answered(self, request_id: int) -> bool:
        waiter = self._waiters.get(request_id)
        return waiter is not None and waiter.done()

    async def reply(self, request_id: int, timeout: float = 10.0) -> dict[str, object]:
        loop = asyncio.get_running_loop()
        waiter = self._waiters.setdefault(request_id, loop.create_future())
        return await asyncio.wait_for(asyncio.shield(waiter), timeout)

    async def ask(self, data: bytes, request_id: int) -> dict[str, object]:
        self.write(data)
        return await self.reply(request_id)

    async def finish(self, *, close_id: int | None = None) -> int:
        """Send close (or EOF) and return serve's status."""
        assert self.stream is not None and self._task is not None
        if close_id is None:
            self.stream.feed_eof()
        else:
            self.write(go_request(close_id, "close"))
        self.session.status = await asyncio.wait_for(self._task, 20)
        return self.session.status


RFC3339 = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z")


def parse_rfc3339(text: str) -> int:
    """Unix nanoseconds of an RFC 3339 UTC time, as Go's time.Time.UnmarshalJSON reads it."""
    match = RFC3339.fullmatch(text)
    assert match, text
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction = match.group(7) or ""
    assert not fraction.endswith("0"), "Go's RFC3339Nano drops trailing zeros"
    seconds = calendar.timegm((year, month, day, hour, minute, second))
    return seconds * 1_000_000_000 + int(fraction.ljust(9, "0") or 0)
