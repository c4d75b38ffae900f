"""The shared tier: plain files on an NFS directory, published by rename.

Every rule here exists because of NFS (see docs/architecture.md):
temp files in ``tmp/`` made with O_EXCL, fsync before rename, object before
the record that points to it, content-addressed objects never rewritten,
every read verified (size + SHA-256) with damage moved to ``quarantine/``,
paths built only from validated hex ids, no symlinks followed. This module
raises ``OSError`` for I/O trouble and lets the tiered store decide to
degrade; damage is reported as a miss through ``on_corrupt``.
"""

from __future__ import annotations

import errno
import json
import os
import re
import socket
import stat
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TypeVar

from gocachemgr.store import ActionEntry, is_hex_id
from gocachemgr.store.atomic import TEMP_PREFIX, AtomicFile, VerifyError, sha256_file

FORMAT = "gocachemgr-shared 1"
SUBDIRS = ("actions", "objects", "artifacts", "modules", "locks", "tmp", "quarantine", "trash")
RECORD_VERSION = 1
MAX_RECORD_BYTES = 4096
MAX_MANIFEST_BYTES = 1 << 20
_HEX32 = re.compile(r"[0-9a-f]{32}")
ARTIFACT_KINDS = frozenset({"", "graphs", "toolchains", "used"})  # used: see usage.py
INT64_MAX = 2**63 - 1
MAX_COST_MS = 2**32 - 1  # what the index's costs table holds
# Errors a reader may see while another node renames over a file, or after a
# server hiccup: worth exactly one retry before the read counts as a miss.
TRANSIENT = frozenset({errno.ENOENT, errno.ESTALE, errno.EIO})
T = TypeVar("T")


class SharedUnavailable(Exception):
    """The shared directory cannot be used at all; the message says why in one line."""


def group_dir(path: Path) -> None:
    """mkdir with the group-shared mode (setgid so files keep the share's group).

    An existing entry must be a plain directory: a symlink planted in the share
    must not redirect our writes. Looked at first, as it usually exists: an
    lstat can be answered from the NFS attribute cache, a mkdir never.
    """
    try:
        existing = os.lstat(path).st_mode
    except FileNotFoundError:
        try:
            os.mkdir(path, 0o775)
        except FileExistsError:  # another node made it meanwhile
            existing = os.lstat(path).st_mode
        else:
            existing = None
    if existing is not None:
        if not stat.S_ISDIR(existing):
            raise OSError(errno.ELOOP, "not a plain directory in the shared layout", str(path))
        return
    mode = stat.S_IMODE(os.stat(path).st_mode)
    os.chmod(path, mode | stat.S_ISGID)


def open_nofollow(path: Path) -> int:
    """Open ``dir/name`` for reading without following a symlink at either level."""
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        return os.open(path.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


def in_daemon_thread(fn: Callable[[], T], name: str) -> Future[T]:
    """``fn()`` on a daemon thread; its result or exception arrives in the future.

    A daemon thread, not a pool worker: the interpreter joins pool threads at
    exit, so a call stuck on a dead hard NFS mount would hang the process.
    """
    done: Future[T] = Future()

    def work() -> None:
        try:
            done.set_result(fn())
        except BaseException as exc:
            done.set_exception(exc)

    threading.Thread(target=work, daemon=True, name=name).start()
    return done


def call_bounded(fn: Callable[[], T], timeout: float) -> T:
    """``fn()``'s result or exception, or TimeoutError after ``timeout``: for one-off
    calls into the share (see ``in_daemon_thread``)."""
    return in_daemon_thread(fn, "shared-call").result(timeout)


class SharedStore:
    def __init__(
        self,
        root: Path,
        *,
        on_corrupt: Callable[[str], None] = lambda reason: None,
        read_only: bool = False,
    ) -> None:
        self.root = root
        self.on_corrupt = on_corrupt
        # Read-only mode ("CI writes, developers read"): the share is never laid out,
        # written or tidied by this process; every put raises EROFS as a backstop
        # for callers that do not check ``read_only`` first.
        self.read_only = read_only
        self.writer = f"{socket.gethostname()}:{os.getpid()}"
        self.tmp_dir = root / "tmp"

    # -- opening -----------------------------------------------------------

    def open(self) -> None:
        """Check the share is usable: a directory of our format (created if empty).

        The root itself is never created: if an NFS mount is missing, creating
        it would silently put the "shared" cache on this node's local disk.
        """
        try:
            st = os.stat(self.root)
        except FileNotFoundError:
            raise SharedUnavailable(f"shared dir {self.root} does not exist") from None
        except OSError as exc:
            raise SharedUnavailable(
                f"shared dir {self.root} is not reachable: {exc.strerror}"
            ) from None
        if not stat.S_ISDIR(st.st_mode):
            raise SharedUnavailable(f"shared dir {self.root} is not a directory")
        fmt_path = self.root / "FORMAT"
        try:
            found = _read_small(fmt_path).decode(errors="replace").strip()
        except FileNotFoundError:
            found = None
        except OSError as exc:
            raise SharedUnavailable(f"cannot read {fmt_path}: {exc.strerror}") from None
        if found is not None and found != FORMAT:
            raise SharedUnavailable(
                f"{fmt_path} says {found!r}, this gocachemgr speaks {FORMAT!r}; "
                f"use a matching gocachemgr or another shared dir"
            )
        for name in SUBDIRS:
            path = self.root / name
            if path.is_symlink():
                raise SharedUnavailable(
                    f"{path} is a symlink; the shared layout must be plain dirs"
                )
        if found is None and self.read_only:
            raise SharedUnavailable(
                f"shared dir {self.root} is not initialised yet and this node is read-only; "
                f"a node that writes lays it out on its first go command"
            )
        if found is None:
            self._initialise()

    def open_in_background(self, on_unusable: Callable[[str], None]) -> Future[None]:
        """Run ``open`` on a daemon thread (``in_daemon_thread``); ``on_unusable(reason)``
        is called before the future resolves when the share cannot be used.
        Unexpected exceptions are re-raised by the future's ``result``.
        """

        def check() -> None:
            try:
                self.open()
            except SharedUnavailable as exc:
                on_unusable(str(exc))
            except OSError as exc:
                on_unusable(f"shared dir {self.root} failed its start-up check ({exc})")

        return in_daemon_thread(check, "shared-open")

    def _initialise(self) -> None:
        """Lay out an empty share; a read-only empty share is unusable."""
        try:
            for name in SUBDIRS:
                group_dir(self.root / name)
            with AtomicFile(self.tmp_dir, fsync=True) as f:
                f.write(f"{FORMAT}\n".encode())
                f.commit(self.root / "FORMAT", replace=False)
        except OSError as exc:
            raise SharedUnavailable(
                f"cannot initialise shared dir {self.root}: {exc.strerror or exc}"
            ) from None

    # -- paths -------------------------------------------------------------

    def _path(self, kind: str, hex_id: str) -> Path:
        if not is_hex_id(hex_id):
            raise ValueError(f"refusing non-hex id {hex_id!r} as a shared path")
        return self.root / kind / hex_id[:2] / hex_id

    def object_path(self, output_id: str) -> Path:
        return self._path("objects", output_id)

    def action_path(self, action_id: str) -> Path:
        return self._path("actions", action_id)

    # -- reading -----------------------------------------------------------

    def get_action(self, action_id: str) -> ActionEntry | None:
        """The record for an action, or None (absent or damaged: damage is quarantined)."""
        path = self.action_path(action_id)
        try:
            raw = _read_small(path)
        except FileNotFoundError:
            return None
        entry = _parse_record(raw)
        if entry is None:
            self.quarantine(path, "malformed action record")
        return entry

    def peek_action(self, action_id: str) -> ActionEntry | None:
        """The record as it is, None when malformed; raises FileNotFoundError when absent.

        For gc and dry runs: looks without quarantining anything.
        """
        return _parse_record(_read_small(self.action_path(action_id)))

    def read_object_into(self, action_id: str, entry: ActionEntry, dest: AtomicFile) -> bool:
        """Stream an action's object into ``dest`` and verify it (see ``read_blob_into``)."""
        return self.read_blob_into(self.action_path(action_id), entry.output_id, entry.size, dest)

    def read_blob_into(self, referrer: Path, output_id: str, size: int, dest: AtomicFile) -> bool:
        """Stream an object into ``dest`` and verify it; False (quarantined) if damaged.

        ``referrer`` is the record or manifest that named the object. A body
        that hashes to its name but not to the referrer's size means the
        referrer lies, so it is quarantined instead of the object.
        """
        path = self.object_path(output_id)
        for attempt in (1, 2):
            try:
                with os.fdopen(open_nofollow(path), "rb") as src:
                    dest.copy_from(src)
                break
            except FileNotFoundError:
                if attempt == 2:
                    # Objects are published before records and never rewritten:
                    # a record whose object is gone (quarantined, collected) is stale.
                    self.quarantine(referrer, "record points to a missing object")
                    return False
                time.sleep(0.01)
            except OSError as exc:
                if attempt == 2 or exc.errno not in TRANSIENT or dest.size:
                    raise
                time.sleep(0.01)
        try:
            dest.verify(size, output_id)
        except VerifyError as exc:
            if dest.sha256 == output_id:
                self.quarantine(referrer, f"record size wrong: {exc}")
            else:
                self.quarantine(path, f"object damaged: {exc}")
            return False
        return True

    def has_object(self, output_id: str) -> bool:
        return self.object_path(output_id).exists()

    # -- writing -----------------------------------------------------------

    def _check_writable(self, target: Path) -> None:
        if self.read_only:
            raise OSError(errno.EROFS, "not written in read-only mode", str(target))

    def put_object(self, output_id: str, size: int, src: str) -> bool:
        """Upload a local body; False if the share already had it. Verifies before publishing."""
        target = self.object_path(output_id)
        self._check_writable(target)
        group_dir(target.parent)  # first: refuses a symlink planted as the shard dir
        if target.exists():
            _touch(target)  # in use again: a concurrent gc must see it as fresh
            return False
        with AtomicFile(self.tmp_dir, fsync=True) as f, open(src, "rb") as source:
            f.copy_from(source)
            f.verify(size, output_id)  # never publish a damaged local body
            return f.commit(target, replace=False)

    def put_action(self, action_id: str, entry: ActionEntry) -> None:
        """Publish the record (last writer wins); the object must already be there."""
        target = self.action_path(action_id)
        self._check_writable(target)
        group_dir(target.parent)
        record = {
            "v": RECORD_VERSION,
            "output_id": entry.output_id,
            "size": entry.size,
            "time_ns": entry.time_ns,
            "writer": self.writer,
        }
        if entry.cost_ms > 0:
            record["cost_ms"] = entry.cost_ms  # optional: older records lack it
        with AtomicFile(self.tmp_dir, fsync=True) as f:
            f.write(json.dumps(record, separators=(",", ":")).encode())
            f.commit(target)

    def touch_action(self, action_id: str) -> None:
        """Mark a record as used now (its mtime is gc's "last used"); best effort."""
        if not self.read_only:
            _touch(self.action_path(action_id))

    def artifact_path(self, key: str, kind: str = "") -> Path:
        """``artifacts/kk/<key>`` for output manifests; ``artifacts/<kind>/kk/<key>`` for the
        records that let a new node skip go entirely (package graphs, toolchain facts)."""
        if not _HEX32.fullmatch(key) or kind not in ARTIFACT_KINDS:
            raise ValueError(f"refusing {kind!r} {key!r} as a shared artifact path")
        return self.root / "artifacts" / kind / key[:2] / key

    def get_manifest(self, key: str, kind: str = "") -> bytes | None:
        """A manifest or record, or None; the caller validates what it reads."""
        try:
            with os.fdopen(open_nofollow(self.artifact_path(key, kind)), "rb") as f:
                return f.read(MAX_MANIFEST_BYTES + 1)
        except FileNotFoundError:
            return None

    def put_manifest(self, key: str, data: bytes, kind: str = "") -> None:
        """Publish a manifest or record (last writer wins); objects it names come first."""
        target = self.artifact_path(key, kind)
        self._check_writable(target)
        if kind:
            group_dir(target.parent.parent)
        group_dir(target.parent)
        with AtomicFile(self.tmp_dir, fsync=True) as f:
            f.write(data)
            f.commit(target)

    def quarantine(self, path: Path, reason: str) -> None:
        """Move a damaged file aside (best effort; left in place in read-only mode), report it."""
        if self.read_only:  # still a miss here; a node that writes moves it aside
            self.on_corrupt(f"{path}: {reason}; left in place by this read-only node")
            return
        self.on_corrupt(f"{path}: {reason}")
        dest = self.root / "quarantine" / f"{path.parent.parent.name}-{path.name}-{time.time_ns()}"
        try:
            os.rename(path, dest)
        except OSError:
            pass  # read-only share, or another node moved it first

    # -- checking ------------------------------------------------------------

    def check(self) -> list[str]:
        """Problems in the share: damaged objects, bad records, dangling records, temp files."""
        problems: list[str] = []
        for path in sorted((self.root / "objects").glob("*/*")):
            if path.name.startswith(TEMP_PREFIX) or sha256_file(path)[1] != path.name:
                problems.append(f"damaged object {path}")
        for path in sorted((self.root / "actions").glob("*/*")):
            entry = _parse_record(_read_small(path))
            if entry is None:
                problems.append(f"malformed record {path}")
            elif not self.has_object(entry.output_id):
                problems.append(f"record {path} points to missing object {entry.output_id}")
        problems += [f"temp file left {p}" for p in (self.root / "tmp").iterdir()]
        return problems


def _touch(path: Path) -> None:
    try:
        os.utime(path, follow_symlinks=False)
    except OSError:
        pass  # read-only share, or gone meanwhile: only gc's view of "in use" suffers


def _read_small(path: Path) -> bytes:
    """Read a record, retrying once on a transient NFS error other than a plain miss."""
    for attempt in (1, 2):
        try:
            with os.fdopen(open_nofollow(path), "rb") as f:
                return f.read(MAX_RECORD_BYTES + 1)
        except FileNotFoundError:
            raise
        except OSError as exc:
            if attempt == 2 or exc.errno not in TRANSIENT:
                raise
            time.sleep(0.01)
    raise AssertionError("unreachable")


def _parse_record(raw: bytes) -> ActionEntry | None:
    if len(raw) > MAX_RECORD_BYTES:
        return None
    try:
        data = json.loads(raw)
        entry = ActionEntry(str(data["output_id"]), int(data["size"]), int(data["time_ns"]))
        version = data["v"]
    except (ValueError, KeyError, TypeError, OverflowError):  # Overflow: "size": Infinity
        return None
    if version != RECORD_VERSION or not is_hex_id(entry.output_id):
        return None
    # The ranges the index can pack (ActionEntry.pack: ">32sQq") and go's int64 fields hold.
    if not (0 <= entry.size <= INT64_MAX and -INT64_MAX - 1 <= entry.time_ns <= INT64_MAX):
        return None
    cost = data.get("cost_ms", 0)  # optional; informational, so a bad one is just unknown
    if type(cost) is int and 0 < cost <= MAX_COST_MS:
        return ActionEntry(entry.output_id, entry.size, entry.time_ns, cost)
    return entry
