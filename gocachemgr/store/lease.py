"""Lease locks in ``<shared>/locks/``: mutual exclusion for read-modify-write on the share.

``flock``/``fcntl`` cannot be trusted on NFS (they hang without a lock manager,
or lock only per node under ``local_lock``/``nolock``), so a lease is a plain
file created with O_EXCL (atomic on NFSv3+), kept alive by a heartbeat and
broken when it stops changing, the way ccache does it. Staleness is measured on
the waiter's own monotonic clock against what the server reports, compared
only for equality: clocks of two machines are never compared.

A heartbeat only changes the file's mtime, so the share's timestamps must be
finer than ``stale_after / 4`` (1 s granularity needs ``stale_after`` >= 4 s).

Hold a lease only around the read-modify-write itself: do slow work (downloads,
hashing) before taking it.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import socket
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

import xxhash

SUFFIX = ".lease"
MAX_LEASE_BYTES = 4096
MAX_WHAT_CHARS = 200  # keeps a record far below MAX_LEASE_BYTES, even all-escaped
READABLE_CHARS = 80  # lease_name_for: readable part; plus "-" and 16 hex digits
FIRST_DELAY = 0.005
MAX_DELAY = 0.1
# Room for the ".lease.released-<16 hex>" aside names within NAME_MAX (255).
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# Never 0 or negative: os.kill would signal a whole process group.
_PID = re.compile(r"[1-9][0-9]{0,8}")
_GONE = frozenset({errno.ENOENT, errno.ESTALE})
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO planted at a lease's name must not hang.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

_Here = tuple[str, str | None, int | None]  # hostname, boot id, pid-namespace inode
_Identity = tuple[int, str | None]  # inode, token: changes only when the file is replaced


class LeaseTimeout(Exception):
    """Another process held the lease longer than we would wait; the message says who and
    what to do, in one line."""


@dataclass(frozen=True)
class _Holder:
    """Who wrote a lease file, as far as its content says (it is not trusted for more)."""

    owner: str  # "host:pid"
    boot_id: object
    pidns: object
    what: str


@dataclass(frozen=True)
class _Seen:
    """One look at the lease file. ``key`` changes with every heartbeat of a live holder."""

    ino: int
    mtime_ns: int
    size: int
    token: str | None
    holder: _Holder | None
    damaged: bool  # not a regular file: a symlink, directory or FIFO planted at the name

    @property
    def key(self) -> tuple[int, int, int, str | None]:
        return (self.ino, self.mtime_ns, self.size, self.token)

    @property
    def identity(self) -> _Identity:
        return (self.ino, self.token)


class _Held(NamedTuple):
    dir_fd: int  # locks_dir, opened once without following a symlink
    identity: _Identity
    stop: threading.Event
    heartbeat: threading.Thread


class Lease:
    """An exclusive lease on ``locks_dir/<name>.lease``, shared by every node of the share.

    A symlink, directory or FIFO found at the lease's name is damage (planted or
    left by a bug), never a holder: it is moved aside and removed like a stale
    lease, without being followed.
    """

    def __init__(
        self,
        locks_dir: Path,
        name: str,
        *,
        what: str = "",
        stale_after: float = 30.0,
        timeout: float = 10.0,
    ) -> None:
        if not _NAME.fullmatch(name):
            raise ValueError(
                f"refusing lease name {name!r}: use 1-200 of A-Z a-z 0-9 . _ -, "
                f"no leading '.' (lease_name_for makes one from any key)"
            )
        if stale_after <= 0:
            raise ValueError(f"stale_after must be positive, not {stale_after!r}")
        self.locks_dir = locks_dir
        self.name = name
        self.path = locks_dir / f"{name}{SUFFIX}"
        self.what = what
        self.stale_after = stale_after
        self.timeout = timeout
        self._file = self.path.name
        self._held: _Held | None = None
        self._lost = False

    @property
    def lost(self) -> bool:
        """True once the heartbeat found our lease replaced or gone: it was broken (we looked
        stale), so the read-modify-write it guards must not be trusted."""
        return self._lost

    def acquire(self) -> None:
        """Take the lease, breaking a stale one; LeaseTimeout after ``timeout`` seconds."""
        if self._held is not None:
            raise RuntimeError(f"lease {self.path} is already held by this Lease")
        dir_fd = os.open(self.locks_dir, _DIR_FLAGS)
        try:
            identity = self._wait_and_create(dir_fd)
        except BaseException:
            os.close(dir_fd)
            raise
        stop = threading.Event()
        heartbeat = threading.Thread(
            target=self._heartbeat,
            args=(dir_fd, identity, stop),
            daemon=True,  # a beat stuck on a dead hard mount must not block exit
            name=f"lease-{self.name}",
        )
        self._held = _Held(dir_fd, identity, stop, heartbeat)
        self._lost = False
        heartbeat.start()

    def release(self) -> None:
        """Give the lease up; idempotent. A lease that was taken from us is left to its new
        holder: only a file that still holds our token is removed."""
        held, self._held = self._held, None
        if held is None:
            return
        held.stop.set()
        held.heartbeat.join()  # it uses dir_fd
        try:
            _take_aside(held.dir_fd, self._file, held.identity, "released")
        finally:
            os.close(held.dir_fd)

    def __enter__(self) -> Lease:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def _wait_and_create(self, dir_fd: int) -> _Identity:
        """Create the lease file, waiting for the holder in the way or breaking it if stale."""
        here = _here()
        token = secrets.token_hex(16)
        record = {
            "owner": f"{here[0]}:{os.getpid()}",
            "token": token,
            "boot_id": here[1],
            "pidns": here[2],
            "time": time.time(),  # for people reading locks/; never compared
            "what": self.what[:MAX_WHAT_CHARS],
        }
        data = json.dumps(record, separators=(",", ":")).encode() + b"\n"
        start = time.monotonic()
        delay = FIRST_DELAY
        last: _Seen | None = None
        since = start
        while (ino := self._create(dir_fd, data)) is None:
            now = time.monotonic()
            seen = _observe(dir_fd, self._file)
            if seen is not None and (last is None or seen.key != last.key):
                last, since = seen, now
            if seen is not None and (
                seen.damaged or _dead_here(seen.holder, here) or now - since >= self.stale_after
            ):
                _take_aside(dir_fd, self._file, seen.identity, "broken")
            elif now - start >= self.timeout:
                raise LeaseTimeout(self._timeout_message(last, now - start))
            elif seen is not None:  # gone (seen is None): try again at once
                time.sleep(min(delay, start + self.timeout - now))
                delay = min(2 * delay, MAX_DELAY)
        return (ino, token)

    def _create(self, dir_fd: int, data: bytes) -> int | None:
        """The new lease file's inode, or None when a lease file exists already."""
        try:
            fd = os.open(self._file, _CREATE_FLAGS, 0o664, dir_fd=dir_fd)
        except FileExistsError:
            return None
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())  # on the server before we act as the holder
                return os.fstat(f.fileno()).st_ino
        except BaseException:
            _remove(dir_fd, self._file)  # just created: nobody can have judged it stale yet
            raise

    def _heartbeat(self, dir_fd: int, identity: _Identity, stop: threading.Event) -> None:
        """Touch the lease while it is ours; set ``lost`` and stop when it is not.

        The lease missing once may be a waiter's rename-check-link-back in
        progress, so only a second miss in a row counts as lost. Never raises:
        an OSError (a server hiccup) is retried at the next beat.
        """
        missing = False
        while not stop.wait(self.stale_after / 4):
            try:
                seen = _observe(dir_fd, self._file)
                if seen is not None and seen.identity == identity:
                    # Server time on NFS; waiters only compare it for equality.
                    os.utime(self._file, dir_fd=dir_fd, follow_symlinks=False)
                elif seen is not None or missing:
                    self._lost = True
                    return
                missing = seen is None
            except OSError:
                pass  # retried at the next beat

    def _timeout_message(self, seen: _Seen | None, waited: float) -> str:
        if seen is None or seen.holder is None:
            holder = "an unknown holder (the lease file could not be read)"
        else:
            what = f" ({seen.holder.what})" if seen.holder.what else ""
            holder = " ".join(f"{seen.holder.owner}{what}".split())  # one line, whatever it says
        purpose = f" for {self.what}" if self.what else ""
        return (
            f"gave up after {waited:.1f} s waiting for lease {self.path}{purpose}: "
            f"held by {holder}; if that process is gone the lease is broken after "
            f"{self.stale_after:g} s without a heartbeat, or delete {self.path}"
        )


def lease_name_for(key: str) -> str:
    """A valid, stable lease name for any key (an escaped module path, a long id).

    The readable prefix is for people looking at ``locks/``; the hash of the
    whole key keeps keys that read alike (``!foo`` and ``foo``) apart.
    """
    digest = xxhash.xxh3_64_hexdigest(key.encode("utf-8", "surrogatepass"))
    readable = _UNSAFE.sub("_", key).lstrip("._-")[:READABLE_CHARS]
    return f"{readable}-{digest}" if readable else digest


def _here() -> _Here:
    """This machine and pid namespace: only from inside both can a holder's pid be checked."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot_id: str | None = f.read().strip()
    except OSError:
        boot_id = None
    try:
        pidns: int | None = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        pidns = None
    return (socket.gethostname(), boot_id, pidns)


def _dead_here(holder: _Holder | None, here: _Here) -> bool:
    """True when the holder ran in this machine's boot and pid namespace and its pid is gone.

    A recycled pid (or an unreaped zombie) looks alive: such a lease is broken
    by the heartbeat rule instead, after ``stale_after``.
    """
    if holder is None or None in here:
        return False
    host, _, pid = holder.owner.rpartition(":")
    if (host, holder.boot_id, holder.pidns) != here or not _PID.fullmatch(pid):
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, another user's
    return False


def _observe(dir_fd: int, name: str) -> _Seen | None:
    """Look at a lease file; None when nothing is there.

    Opening it, not just stat-ing it, makes an NFS client revalidate its cached
    attributes (close-to-open consistency).
    """
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in _GONE:
            return None
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if stat.S_ISREG(st.st_mode):
            raise  # a real I/O problem (EACCES, EIO), not damage
        return _Seen(st.st_ino, st.st_mtime_ns, st.st_size, None, None, damaged=True)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return _Seen(st.st_ino, st.st_mtime_ns, st.st_size, None, None, damaged=True)
        token, holder = _parse(os.read(fd, MAX_LEASE_BYTES + 1))
    finally:
        os.close(fd)
    return _Seen(st.st_ino, st.st_mtime_ns, st.st_size, token, holder, damaged=False)


def _parse(raw: bytes) -> tuple[str | None, _Holder | None]:
    """Token and holder of a lease file; (None, None) while it is being written, or garbled."""
    try:
        data = json.loads(raw)
        token, owner = data["token"], data["owner"]
        holder = _Holder(owner, data.get("boot_id"), data.get("pidns"), str(data.get("what", "")))
    except (ValueError, KeyError, TypeError):
        return None, None
    if not (isinstance(token, str) and isinstance(owner, str)):
        return None, None
    return token, holder


def _take_aside(dir_fd: int, name: str, identity: _Identity, label: str) -> None:
    """Remove ``name`` only if it is still the file we judged (``identity``).

    The rename is the one atomic step: checking first and unlinking after would
    race with another waiter breaking the same lease and a new holder creating a
    fresh one in between. A file moved by mistake is linked back; EEXIST means
    yet another holder came in meanwhile, and the moved one has lost its lease
    (its heartbeat tells it).
    """
    aside = f"{name}.{label}-{secrets.token_hex(8)}"
    try:
        os.rename(name, aside, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in _GONE:
            return
        raise
    moved = _observe(dir_fd, aside)
    if moved is not None and moved.identity != identity:
        try:
            os.link(aside, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
        except FileExistsError:
            pass
    _remove(dir_fd, aside)


def _remove(dir_fd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        try:
            os.rmdir(name, dir_fd=dir_fd)
        except OSError:
            pass  # a non-empty directory planted as a lease stays aside; the name is free
