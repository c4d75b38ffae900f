"""File-change watcher: lets the content-key core skip stat-checking unchanged trees.

``gocachemgr watch ROOT...`` runs a watchdog observer and appends every path
that changes under its roots to a sequence-numbered log in the lmdb index (the
``dirty`` table), with a heartbeat record per root (the ``watchers`` table).
A caller that remembers the sequence number of its last look asks
:meth:`WatchState.changes_since` what changed after it.

Correctness never depends on the watcher, only speed does: whenever the log
cannot vouch for a tree (no live watcher, a watcher that started after the
caller's last look, lost events, a compacted log, a root that was replaced,
a sync round trip that did not come back) the answer is ``trusted=False`` and
the caller stat-checks everything, as it would without a watcher.

Event delivery is asynchronous, so a log read without more would miss an edit
made a few milliseconds earlier. ``changes_since`` therefore first does a sync
round trip (as watchman does): it creates a cookie file in the root and waits
until the watcher has logged it. inotify reports a watch's events in order and
the watcher logs them in order, so once the cookie is in the log, every change
made before the call is too.

This module does not import watchdog until a watcher runs: callers that only
read the log (every build) must not pay for it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import signal
import struct
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lmdb

from gocachemgr.errors import UserError
from gocachemgr.index import Index

if TYPE_CHECKING:
    from watchdog.events import FileSystemEvent
    from watchdog.observers.api import BaseObserver

STALE_INTERVALS = 3  # a heartbeat older than this many intervals means the watcher is gone
DEFAULT_SYNC_TIMEOUT_S = 1.0  # > watchdog's 0.5 s hold on an unpaired move-out
COOKIE_PREFIX = ".gocachemgr-sync-"
_COOKIE_RE = re.compile(re.escape(COOKIE_PREFIX) + r"\d+-[0-9a-f]{16}\Z")

_SEQ = struct.Struct(">Q")
_META_SEQ = b"\x00seq"  # last sequence number handed out
_META_FLOOR = b"\x00floor"  # entries at or below this were compacted away
# Log entry kinds (first byte of the value).
_DIRTY = b"D"  # a changed path
_OVERFLOW = b"O"  # events under a root were lost
_COOKIE = b"C"  # a sync cookie seen by a watcher: root NUL pid NUL cookie path

_log = logging.getLogger(__name__)


class WatchError(UserError):
    """The watcher cannot start or had to stop (bad root, watch limits, root replaced)."""

    exit_code = 1


class BadRootError(WatchError):
    exit_code = 2


@dataclass(frozen=True)
class Changes:
    """What changed under a root since a sequence number.

    ``paths`` is complete only when ``trusted``; otherwise the caller must
    stat-check everything under the root. A directory in ``paths`` means
    everything under it may have changed. ``seq`` is what to pass next time.
    ``reason`` says why the answer is not trusted (for logs and ``doctor``).
    """

    trusted: bool
    seq: int
    paths: frozenset[str]
    reason: str = ""


@dataclass(frozen=True)
class WatcherRecord:
    """One watched root of one watcher process, as stored in the ``watchers`` table."""

    root: str
    pid: int
    start_seq: int
    heartbeat_ns: int
    interval_ns: int
    dev: int
    ino: int

    def pack(self) -> bytes:
        return json.dumps(
            [self.pid, self.start_seq, self.heartbeat_ns, self.interval_ns, self.dev, self.ino]
        ).encode()

    @classmethod
    def unpack(cls, key: bytes, value: bytes) -> WatcherRecord:
        root = os.fsdecode(key.rpartition(b"\x00")[0])
        pid, start_seq, heartbeat_ns, interval_ns, dev, ino = json.loads(value)
        return cls(root, pid, start_seq, heartbeat_ns, interval_ns, dev, ino)

    def dead_reason(self, now_ns: int) -> str | None:
        """Why this watcher cannot be trusted now, or None if it looks alive.

        Both checks are needed: a pid can be reused, and a hung process keeps its pid.
        """
        if abs(now_ns - self.heartbeat_ns) > STALE_INTERVALS * self.interval_ns:
            return f"watcher {self.pid} for {self.root} has a stale heartbeat"
        if not _pid_exists(self.pid):
            return f"watcher {self.pid} for {self.root} is not running"
        try:
            st = os.stat(self.root)
        except OSError:
            return f"watched root {self.root} is gone"
        if (st.st_dev, st.st_ino) != (self.dev, self.ino):
            return f"watched root {self.root} was replaced"
        return None


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _norm(path: str | os.PathLike[str]) -> str:
    text = os.fspath(path)
    if not os.path.isabs(text):
        raise ValueError(f"watch paths must be absolute, got {text!r}")
    return os.path.normpath(text)


def _covers(ancestor: str, path: str) -> bool:
    """True if ``path`` is ``ancestor`` or lies under it (both normalised)."""
    return path == ancestor or path.startswith(ancestor.rstrip("/") + "/")


def _watcher_key(root: str, pid: int) -> bytes:
    return os.fsencode(root) + b"\x00" + str(pid).encode()


class WatchState:
    """The watcher's lmdb tables, shared by the watcher process and every reader.

    Sequence numbers only grow and are handed out inside write transactions,
    so lmdb's single-writer commit order is also sequence order: anything
    committed after a reader's snapshot has a larger number than the
    snapshot's ``current_seq``.
    """

    def __init__(self, index: Index) -> None:
        self.env = index.env
        self._log = self.env.open_db(b"dirty")
        self._watchers = self.env.open_db(b"watchers")

    # -- writing -----------------------------------------------------------

    def _alloc(self, txn: lmdb.Transaction, count: int) -> int:
        """Reserve ``count`` sequence numbers; return the first."""
        raw = txn.get(_META_SEQ, db=self._watchers)
        last = _SEQ.unpack(raw)[0] if raw else 0
        txn.put(_META_SEQ, _SEQ.pack(last + count), db=self._watchers)
        return last + 1

    def _append(self, entries: Sequence[bytes]) -> None:
        """Append log entries (kind byte + payload) in one transaction, in order."""
        if not entries:
            return
        with self.env.begin(write=True) as txn:
            first = self._alloc(txn, len(entries))
            cursor = txn.cursor(db=self._log)
            cursor.putmulti(
                ((_SEQ.pack(first + i), entry) for i, entry in enumerate(entries)), append=True
            )

    def mark_dirty(self, paths: Iterable[str]) -> None:
        """Log absolute paths as changed, each with its own increasing sequence number."""
        self._append([_DIRTY + os.fsencode(_norm(p)) for p in paths])

    def mark_overflow(self, root: str) -> None:
        """Log that events under ``root`` were lost: any look before this is untrusted."""
        self._append([_OVERFLOW + os.fsencode(_norm(root))])

    def register(
        self,
        root: str,
        pid: int,
        now_ns: int,
        *,
        interval_s: float = 1.0,
        root_id: tuple[int, int] | None = None,
    ) -> int:
        """Record a new watcher for ``root``; return its start sequence number.

        Call only once the observer watches the root: the start number is
        freshly allocated, so any caller whose last look is at or after it
        looked after the watch began. Records of dead processes are dropped.
        """
        root = _norm(root)
        if root_id is None:
            st = os.stat(root)
            root_id = (st.st_dev, st.st_ino)
        with self.env.begin(write=True) as txn:
            for key, value in list(txn.cursor(db=self._watchers)):
                if not key.startswith(b"\x00"):
                    old = WatcherRecord.unpack(key, value)
                    if not _pid_exists(old.pid):
                        txn.delete(key, db=self._watchers)
            start = self._alloc(txn, 1)
            record = WatcherRecord(
                root, pid, start, now_ns, int(interval_s * 1e9), root_id[0], root_id[1]
            )
            txn.put(_watcher_key(root, pid), record.pack(), db=self._watchers)
        return start

    def heartbeat(self, root: str, pid: int, now_ns: int, *, interval_s: float = 1.0) -> None:
        """Refresh a watcher's heartbeat; re-register it (new start seq) if its record is gone."""
        root = _norm(root)
        key = _watcher_key(root, pid)
        with self.env.begin(write=True) as txn:
            raw = txn.get(key, db=self._watchers)
            if raw is not None:
                old = WatcherRecord.unpack(key, raw)
                record = WatcherRecord(
                    root, pid, old.start_seq, now_ns, old.interval_ns, old.dev, old.ino
                )
                txn.put(key, record.pack(), db=self._watchers)
                return
        self.register(root, pid, now_ns, interval_s=interval_s)

    def stop(self, root: str, pid: int | None = None) -> None:
        """Remove a watcher's record (clean shutdown): readers stop trusting it at once."""
        key = _watcher_key(_norm(root), os.getpid() if pid is None else pid)
        with self.env.begin(write=True, db=self._watchers) as txn:
            txn.delete(key)

    def compact(self, keep_after_seq: int) -> None:
        """Drop log entries at or below ``keep_after_seq``.

        Looks from before that point become untrusted (the log can no longer
        vouch for them); their callers fall back to a full stat-check.
        """
        with self.env.begin(write=True) as txn:
            raw = txn.get(_META_FLOOR, db=self._watchers)
            floor = _SEQ.unpack(raw)[0] if raw else 0
            if keep_after_seq <= floor:
                return
            cursor = txn.cursor(db=self._log)
            if cursor.first():
                while cursor.key() and _SEQ.unpack(cursor.key())[0] <= keep_after_seq:
                    if not cursor.delete():
                        break
            txn.put(_META_FLOOR, _SEQ.pack(keep_after_seq), db=self._watchers)

    # -- reading -----------------------------------------------------------

    def current_seq(self) -> int:
        """The last sequence number handed out. Read it BEFORE stat-checking a tree."""
        with self.env.begin(db=self._watchers) as txn:
            raw = txn.get(_META_SEQ)
        return _SEQ.unpack(raw)[0] if raw else 0

    def log_size(self) -> int:
        with self.env.begin() as txn:
            return txn.stat(self._log)["entries"]

    def watchers(self) -> list[WatcherRecord]:
        """Every watcher record, live or not (for tests and ``doctor``)."""
        with self.env.begin(db=self._watchers) as txn:
            return [
                WatcherRecord.unpack(k, v) for k, v in txn.cursor() if not k.startswith(b"\x00")
            ]

    def changes_since(
        self, root: str, seq: int, now_ns: int, *, sync_timeout_s: float = DEFAULT_SYNC_TIMEOUT_S
    ) -> Changes:
        """What changed under ``root`` after ``seq`` (a ``Changes.seq`` or ``current_seq()``
        read before the caller's last full look).

        ``trusted`` is True only if all of these hold:

        - a watcher whose root is ``root`` or an ancestor is alive: heartbeat
          within 3 intervals of ``now_ns`` (wall clock ns), its pid exists,
          and its root is still the same directory (device and inode);
        - it was registered at or before ``seq``, so it saw everything after;
        - no events overlapping ``root`` were lost after ``seq``;
        - the log still holds everything after ``seq`` (not compacted);
        - a sync cookie created in ``root`` came back through that watcher
          within ``sync_timeout_s``, so changes made before this call are in
          the log (this writes and removes a dot-file in ``root``; a
          read-only ``root`` is never trusted).

        Paths are reported as the watcher saw them, under its resolved root:
        pass ``root`` (and compare paths) in ``os.path.realpath`` form. A
        dirty ancestor of ``root`` is reported as ``root`` itself.
        """
        root = _norm(root)
        candidates: set[tuple[str, int]] = set()
        problems: list[str] = []  # why covering watchers do not qualify
        for record in self.watchers():
            if not _covers(record.root, root):
                continue
            dead = record.dead_reason(now_ns)
            if dead:
                problems.append(dead)
            elif record.start_seq > seq:
                problems.append(f"watcher {record.pid} started after seq {seq}")
            else:
                candidates.add((record.root, record.pid))
        reason = ""
        if not candidates:
            reason = problems[0] if problems else f"no watcher covers {root}"
        else:
            synced = self._sync(root, candidates, sync_timeout_s)
            if synced is None:
                reason = f"cannot create a sync cookie in {root}"
                candidates = set()
            else:
                candidates &= synced
                if not candidates:
                    reason = f"sync cookie in {root} did not come back in {sync_timeout_s} s"

        paths: set[str] = set()
        with self.env.begin() as txn:
            raw = txn.get(_META_SEQ, db=self._watchers)
            current = _SEQ.unpack(raw)[0] if raw else 0
            raw = txn.get(_META_FLOOR, db=self._watchers)
            floor = _SEQ.unpack(raw)[0] if raw else 0
            # The watcher must still be registered in the snapshot we read the log from.
            if not reason and not any(
                txn.get(_watcher_key(*c), db=self._watchers) is not None for c in candidates
            ):
                reason = "the watcher stopped"
            cursor = txn.cursor(db=self._log)
            if cursor.set_range(_SEQ.pack(seq + 1)):
                for value in cursor.iternext(keys=False, values=True):
                    kind, path = value[:1], os.fsdecode(value[1:])
                    if kind == _DIRTY:
                        if _covers(root, path):
                            paths.add(path)
                        elif _covers(path, root):
                            paths.add(root)
                    elif kind == _OVERFLOW and (_covers(root, path) or _covers(path, root)):
                        reason = reason or f"events under {path} were lost after seq {seq}"
        if seq > current:
            reason = f"seq {seq} is ahead of the log ({current}); the index was reset"
        elif seq < floor:
            reason = f"the log was compacted past seq {seq}"
        return Changes(not reason, current, frozenset(paths), reason)

    def _sync(
        self, root: str, candidates: set[tuple[str, int]], timeout_s: float
    ) -> set[tuple[str, int]] | None:
        """Create a cookie file in ``root``; return the watchers that logged it in time
        (None if the cookie cannot be created, e.g. a read-only tree)."""
        cookie = os.path.join(root, f"{COOKIE_PREFIX}{os.getpid()}-{secrets.token_hex(8)}")
        after = self.current_seq()
        try:
            os.close(os.open(cookie, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except OSError:
            return None
        seen: set[tuple[str, int]] = set()
        try:
            deadline = time.monotonic() + timeout_s
            pause = 0.0002
            while True:
                with self.env.begin(db=self._log) as txn:
                    cursor = txn.cursor()
                    if cursor.set_range(_SEQ.pack(after + 1)):
                        for key, value in cursor:
                            after = _SEQ.unpack(key)[0]
                            if value[:1] == _COOKIE:
                                wroot, pid, path = value[1:].split(b"\x00", 2)
                                if os.fsdecode(path) == cookie:
                                    seen.add((os.fsdecode(wroot), int(pid)))
                if seen & candidates or time.monotonic() >= deadline:
                    return seen
                time.sleep(pause)
                pause = min(pause * 2, 0.005)
        finally:
            try:
                os.unlink(cookie)
            except OSError:
                pass


# -- the watcher ---------------------------------------------------------------


def resolve_roots(roots: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Validate and resolve roots; drop roots nested in others (one watch covers them).

    Roots are resolved with realpath because the watcher does not follow
    symlinks: a root reached through a link would otherwise not match.
    """
    if not roots:
        raise BadRootError("watch needs at least one directory to watch")
    resolved: list[str] = []
    for root in roots:
        path = os.path.realpath(os.fspath(root))
        if not os.path.exists(path):
            raise BadRootError(f"cannot watch {os.fspath(root)}: no such directory")
        if not os.path.isdir(path):
            raise BadRootError(f"cannot watch {os.fspath(root)}: not a directory")
        resolved.append(path)
    unique = list(dict.fromkeys(resolved))
    return [r for r in unique if not any(o != r and _covers(o, r) for o in unique)]


class _Sink:
    """Events handed from watchdog's thread to the writer loop; bounded by ``max_pending``."""

    def __init__(self, roots: Sequence[str], max_pending: int) -> None:
        self.roots = list(roots)
        self.max_pending = max_pending
        self.lock = threading.Lock()
        self.items: list[bytes] = []
        self.overflowed: set[str] = set()
        self.fatal: BaseException | None = None
        self.wake = threading.Event()  # something to write
        self.urgent = threading.Event()  # a sync cookie is waiting: write now

    def add(self, entries: list[bytes], *, cookie: bool = False) -> None:
        with self.lock:
            self.items.extend(entries)
            if len(self.items) > self.max_pending:
                # Too far behind: drop the paths and mark every root lost. Cookies
                # stay so that waiting callers get an answer (an untrusted one).
                self.items = [i for i in self.items if i[:1] == _COOKIE]
                self.overflowed.update(self.roots)
        self.wake.set()
        if cookie:
            self.urgent.set()

    def overflow(self, root: str) -> None:
        with self.lock:
            self.overflowed.add(root)
        self.wake.set()

    def fail(self, exc: BaseException) -> None:
        with self.lock:
            if self.fatal is None:
                self.fatal = exc
        self.wake.set()

    def take(self) -> tuple[list[bytes], set[str], BaseException | None]:
        with self.lock:
            items, self.items = self.items, []
            overflowed, self.overflowed = self.overflowed, set()
            return items, overflowed, self.fatal


def _entries_for_event(
    root: str, pid: int, event: FileSystemEvent, *, skip_dir_modified: bool
) -> tuple[list[bytes], bool]:
    """Log entries for one watchdog event, and whether it carries a sync cookie.

    A directory's own create/delete/move marks the directory. Directory
    "modified" events only restate a child's create/delete/move (inotify
    reports those separately), so they are skipped there: logging them would
    make every new file dirty its whole parent directory.
    """
    from watchdog.events import DirModifiedEvent, EventsLostEvent

    if isinstance(event, EventsLostEvent):
        return [_OVERFLOW + os.fsencode(root)], False
    if skip_dir_modified and isinstance(event, DirModifiedEvent):
        return [], False
    entries: list[bytes] = []
    cookie = False
    for raw in (event.src_path, event.dest_path):
        if not raw:
            continue
        path = os.path.normpath(os.fsdecode(raw))
        if _COOKIE_RE.match(os.path.basename(path)):
            if event.event_type == "created":
                wid = os.fsencode(root) + b"\x00" + str(pid).encode() + b"\x00"
                entries.append(_COOKIE + wid + os.fsencode(path))
                cookie = True
            continue
        entries.append(_DIRTY + os.fsencode(path))
    return entries, cookie


def _event_filter(skip_dir_modified: bool) -> list[type[FileSystemEvent]]:
    """Events worth logging. Opens and read-only closes are left out: every build
    reads every source file, and logging reads would flood the queue."""
    from watchdog import events as ev

    wanted: list[type[FileSystemEvent]] = [
        ev.FileCreatedEvent,
        ev.DirCreatedEvent,
        ev.FileDeletedEvent,
        ev.DirDeletedEvent,
        ev.FileMovedEvent,
        ev.DirMovedEvent,
        ev.FileModifiedEvent,
        ev.FileClosedEvent,
        ev.FileAttribEvent,
        ev.DirAttribEvent,
        ev.EventsLostEvent,
    ]
    if not skip_dir_modified:
        wanted.append(ev.DirModifiedEvent)
    return wanted


class _LogHook(logging.Handler):
    """Turn watchdog's logged warnings into overflow or failure.

    watchdog only logs some losses: when the inotify watch limit is reached
    while adding a new subdirectory it warns "Unable to watch ..." and leaves
    that subtree unwatched for good, so the watcher must stop rather than
    vouch for it.
    """

    def __init__(self, sink: _Sink) -> None:
        super().__init__(level=logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Inotify queue overflowed"):
            return  # an EventsLostEvent follows, in order with the other events
        if message.startswith("Unable to"):
            self.sink.fail(
                WatchError(
                    f"stopped watching: {message}; raise fs.inotify.max_user_watches "
                    f"(sysctl) or watch a smaller tree"
                )
            )
        else:
            for root in self.sink.roots:
                self.sink.overflow(root)


def run_watcher(
    roots: Sequence[Path | str],
    index: Index,
    *,
    stop: threading.Event,
    heartbeat_s: float = 1.0,
    max_pending: int = 100_000,
    on_ready: Callable[[], None] | None = None,
    batch_s: float = 0.025,
    max_log: int = 200_000,
) -> None:
    """Watch ``roots`` recursively and log changes until ``stop`` is set.

    Watches are in place before the watcher registers (start seq), so no
    change after registration can be missed. Changes are written in batches
    (one transaction at most every ``batch_s``, at once for a sync cookie);
    the heartbeat is refreshed every ``heartbeat_s``. More than
    ``max_pending`` unwritten events, or a loss reported by watchdog, logs an
    overflow. The log is compacted to about ``max_log`` entries.

    Raises WatchError if a root cannot be watched, or when a root is deleted
    or replaced, a watchdog thread dies, or the watch limit cuts a subtree
    off; the records are removed first, so readers fall back to stat-checks.
    """
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    resolved = resolve_roots(roots)
    state = WatchState(index)
    pid = os.getpid()
    sink = _Sink(resolved, max_pending)
    observer = Observer()
    skip_dir_modified = type(observer).__name__ == "InotifyObserver"

    class Handler(FileSystemEventHandler):
        def __init__(self, root: str) -> None:
            self.root = root

        def dispatch(self, event: FileSystemEvent) -> None:
            try:
                entries, cookie = _entries_for_event(
                    self.root, pid, event, skip_dir_modified=skip_dir_modified
                )
                if entries:
                    sink.add(entries, cookie=cookie)
            except BaseException as exc:  # a dead handler would make the watcher blind
                sink.fail(exc)

    hook = _LogHook(sink)
    watchdog_logger = logging.getLogger("watchdog")
    watchdog_logger.addHandler(hook)
    old_level = watchdog_logger.level
    if watchdog_logger.getEffectiveLevel() > logging.WARNING:
        watchdog_logger.setLevel(logging.WARNING)  # the hook must see watchdog's warnings
    registered: list[str] = []
    identities: dict[str, tuple[int, int]] = {}
    try:
        for root in resolved:
            st = os.stat(root)
            identities[root] = (st.st_dev, st.st_ino)
            try:
                observer.schedule(
                    Handler(root),
                    root,
                    recursive=True,
                    event_filter=_event_filter(skip_dir_modified),
                )
            except OSError as exc:
                raise WatchError(
                    f"cannot watch {root}: {exc.strerror or exc}; raise fs.inotify.max_user_watches"
                    f" / max_user_instances (sysctl) or watch a smaller tree"
                ) from None
        observer.start()
        for root in resolved:
            state.register(
                root, pid, time.time_ns(), interval_s=heartbeat_s, root_id=identities[root]
            )
            registered.append(root)
        if on_ready is not None:
            on_ready()
        _writer_loop(state, sink, observer, identities, stop, heartbeat_s, batch_s, max_log)
    finally:
        observer.stop()
        if observer.is_alive():
            observer.join(timeout=5)
        watchdog_logger.removeHandler(hook)
        watchdog_logger.setLevel(old_level)
        for root in registered:
            try:
                state.stop(root, pid)
            except lmdb.Error:
                pass  # the heartbeat goes stale; readers stop trusting it anyway


def _writer_loop(
    state: WatchState,
    sink: _Sink,
    observer: BaseObserver,
    identities: dict[str, tuple[int, int]],
    stop: threading.Event,
    heartbeat_s: float,
    batch_s: float,
    max_log: int,
) -> None:
    pid = os.getpid()
    next_beat = time.monotonic() + heartbeat_s
    while True:
        stopping = stop.is_set()
        if not stopping:
            # Wake at least every 0.2 s so a stop request is seen promptly.
            sink.wake.wait(max(0.0, min(0.2, next_beat - time.monotonic())))
            sink.wake.clear()
            if sink.items and not sink.urgent.is_set():
                sink.urgent.wait(batch_s)  # gather a batch unless a cookie waits
        sink.urgent.clear()
        items, overflowed, fatal = sink.take()
        if fatal is not None:
            if isinstance(fatal, WatchError):
                raise fatal
            raise WatchError(f"stopped watching: the event handler failed: {fatal!r}") from fatal
        # Overflow markers first: a cookie in the same batch must not vouch for lost events.
        state._append([_OVERFLOW + os.fsencode(r) for r in sorted(overflowed)] + items)
        if stopping:
            return
        if time.monotonic() >= next_beat:
            _check_health(observer, identities)
            now = time.time_ns()
            for root in identities:
                state.heartbeat(root, pid, now, interval_s=heartbeat_s)
            if state.log_size() > max_log:
                state.compact(state.current_seq() - max_log // 2)
            next_beat = time.monotonic() + heartbeat_s


def _check_health(observer: BaseObserver, identities: dict[str, tuple[int, int]]) -> None:
    """Stop vouching for roots watchdog no longer watches: it stops a watch silently
    when its root is deleted, and a moved root keeps reporting under the old path."""
    for root, identity in identities.items():
        try:
            st = os.stat(root)
        except OSError:
            raise WatchError(f"stopped watching {root}: it was deleted or moved") from None
        if (st.st_dev, st.st_ino) != identity:
            raise WatchError(f"stopped watching {root}: it was replaced by another directory")
    if not observer.is_alive():
        raise WatchError("stopped watching: the watchdog observer thread died")
    for emitter in observer.emitters:
        if not emitter.is_alive():
            raise WatchError(f"stopped watching {emitter.watch.path}: its watch ended")
    # The inotify reader is private to watchdog; if it dies, events stop with no other sign.
    reader: Any = getattr(observer, "_inotify_fd", None)
    if reader is not None and hasattr(reader, "is_alive") and not reader.is_alive():
        raise WatchError("stopped watching: watchdog's inotify reader thread died")


def watch_until_signalled(
    roots: Sequence[Path | str], index: Index, *, on_ready: Callable[[], None] | None = None
) -> None:
    """Run a watcher until SIGINT or SIGTERM, then stop cleanly (records removed)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        run_watcher(roots, index, stop=stop, on_ready=on_ready)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
