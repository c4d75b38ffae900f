"""Copy shared entries into the local tier before go asks for them.

The helper's own pool (``TieredStore.read_pool``) serves go's requests; the
prefetch runs on a few daemon threads of its own, so go's requests never queue
behind it. A request for an entry that is queued takes it over (the worker
skips it); one for an entry being copied waits for that copy instead of
reading the share a second time. ``stop`` drops what is queued and returns at
once: a worker stuck in an NFS call is abandoned, like any daemon thread.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future

from gocachemgr.config import Config
from gocachemgr.store import ActionEntry
from gocachemgr.store.tiered import TieredStore
from gocachemgr.usage import Recorder, UsageLog, workspace_key

WORKERS = 3


class Prefetcher:
    def __init__(self, store: TieredStore, *, max_bytes: int, workers: int = WORKERS) -> None:
        self.store = store
        self.max_bytes = max_bytes
        self.workers = workers
        self._lock = threading.Lock()
        self._queue: deque[str] = deque()
        self._queued: set[str] = set()
        self._running: dict[str, Future[None]] = {}
        self._threads: list[threading.Thread] = []
        self._stopped = False
        self.reserved = 0  # bytes admitted for copying
        self.fetched: set[str] = set()  # action ids this prefetch put in the local tier
        # Ids the share had nothing usable for (absent, damaged: quarantined now). go's
        # get for one is a miss without a second read, which would find a stale record.
        self.missing: set[str] = set()
        self.considered = 0  # ids taken off the queue by a worker
        self.over_budget = 0  # entries not copied because max_bytes was reached
        self.total = 0

    # -- feeding -------------------------------------------------------------

    def start(self, plan: Callable[[], Iterable[str]]) -> None:
        """Compute the ids with ``plan`` on a daemon thread (it may read the share),
        then copy them on ``workers`` daemon threads. Never blocks the caller."""

        def run() -> None:
            try:
                ids = list(plan())
            except OSError:
                return  # the share's trouble is reported by go's own requests, if at all
            except Exception as exc:  # a daemon thread must not die with a traceback
                self.store.reporter.warn_once(f"prefetch failed ({exc!r}); go asks as usual")
                return
            self.add(ids)

        threading.Thread(target=run, daemon=True, name="prefetch-plan").start()

    def add(self, ids: Iterable[str]) -> None:
        with self._lock:
            if self._stopped:
                return
            for action_id in ids:
                if action_id not in self._queued:
                    self._queued.add(action_id)
                    self._queue.append(action_id)
                    self.total += 1
            self._threads = [t for t in self._threads if t.is_alive()]
            for _ in range(min(self.workers, len(self._queue)) - len(self._threads)):
                worker = threading.Thread(target=self._work, daemon=True, name="prefetch")
                self._threads.append(worker)
                worker.start()

    # -- go's side -------------------------------------------------------------

    def claim(self, action_id: str) -> Future[None] | None:
        """For go's request on a local miss: the copy in progress to wait for, or None
        (then the caller reads the share itself, unless the id is in ``missing``; a
        queued copy is dropped)."""
        with self._lock:
            self._queued.discard(action_id)
            return self._running.get(action_id)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self._queue.clear()
            self._queued.clear()

    def wait(self, timeout: float) -> bool:
        """For `warm --pull`: wait up to ``timeout`` s for the workers; True when all are done."""
        deadline = time.monotonic() + timeout
        for worker in list(self._threads):
            worker.join(max(0.0, deadline - time.monotonic()))
        return not any(w.is_alive() for w in self._threads)

    # -- workers -----------------------------------------------------------------

    def _next(self) -> tuple[str, Future[None]] | None:
        with self._lock:
            while self._queue and not self._stopped:
                action_id = self._queue.popleft()
                if action_id not in self._queued:
                    continue  # go asked for it meanwhile
                self._queued.discard(action_id)
                done: Future[None] = Future()
                done.set_running_or_notify_cancel()  # a waiter's cancel must not void it
                self._running[action_id] = done
                self.considered += 1
                return action_id, done
            return None

    def _admit(self, entry: ActionEntry) -> bool:
        with self._lock:
            if self._stopped or self.reserved + entry.size > self.max_bytes:
                self.over_budget += not self._stopped
                return False
            self.reserved += entry.size
            return True

    def _copy(self, action_id: str) -> None:
        """Copy one entry unless it is local; remember whether the share had it."""
        if self.store.local.get(action_id) is not None:
            return
        refused = False

        def admit(entry: ActionEntry) -> bool:
            nonlocal refused
            refused = not self._admit(entry)
            return not refused

        if self.store.fetch_shared(action_id, admit=admit) is not None:
            self.fetched.add(action_id)
        elif not refused:
            self.missing.add(action_id)

    def _work(self) -> None:
        while (item := self._next()) is not None:
            action_id, done = item
            try:
                self._copy(action_id)
            except Exception as exc:  # a daemon thread must not die with a traceback
                self.store.reporter.warn_once(f"prefetch failed ({exc!r}); go asks as usual")
            finally:
                with self._lock:
                    self._running.pop(action_id, None)
                done.set_result(None)


def for_go_command(
    store: TieredStore, config: Config, cwd: str, env: Mapping[str, str]
) -> tuple[Prefetcher | None, Recorder | None]:
    """The cacheprog helper's recorder of what this go command uses and, with the
    ``prefetch`` setting, the prefetch of what its workspace used last time (this
    node's list first, else the one on the share). Neither without a shared dir."""
    if store.shared is None:
        return None, None
    log = UsageLog(store.local.index, store.shared)
    recorder = Recorder(log, workspace_key(cwd, env))
    if not config.prefetch:
        return None, recorder

    def plan() -> list[str]:
        used = log.local(recorder.key)
        if used is None and store.wait_shared() and store.shared_readable:
            used = recorder.base = log.from_share(recorder.key)
        return [action_id for action_id, _ in used or ()]

    prefetcher = Prefetcher(store, max_bytes=config.prefetch_max_bytes)
    prefetcher.start(plan)
    return prefetcher, recorder
