"""An emulated NFS mount: a FUSE passthrough of a local directory, every request delayed.

There is no NFS client in this kernel, and a local temp dir standing in for the
share hides what matters most on NFS: every metadata operation is a round trip
to the server. This mount adds that cost and nothing else, so the benchmarks can
put the shared tier (or a native GOCACHE) behind a round trip of e.g. 0.2, 1 or 5 ms.

How: ``emulated_nfs`` starts ``python -m benchmarks.nfsemu serve BACKING MOUNTPOINT
--latency-ms X`` as a child process, a multi-threaded FUSE server (mfusepy's
high-level API on the system libfuse) that sleeps ``X`` ms at the start of every
request it serves, then does the same call on BACKING. FUSE has no network at
all: the "round trip" is a sleep in the server, nothing binds a port.

Needs (Debian packages, all installed here): ``fuse3`` (fusermount3, setuid root,
needed when not root) and ``libfuse3-3`` (the library mfusepy loads with ctypes;
mfusepy 3.x also takes libfuse 2 from the ``fuse``/``libfuse2`` packages), plus
``pip install '.[bench]'`` for mfusepy, and ``/dev/fuse``.

What is delayed: every request the kernel sends, once. libfuse answers some of them
(create, mkdir, link, symlink, setattr, and open's cache check) by calling getattr on
the same path afterwards; on NFS those attributes come with the reply, so that getattr
is not delayed again. As the Linux FUSE and NFS clients map system calls:

* a lookup or ``stat`` of a path not in the kernel's cache: one LOOKUP/GETATTR;
* ``open`` one OPEN, ``close`` one FLUSH (plus an asynchronous RELEASE): NFSv4's
  OPEN and CLOSE; a read or write one request per 128 KiB-1 MiB chunk (1 MiB is
  FUSE's max_write here, like a common ``wsize``);
* ``create`` (O_EXCL decided by the backing file system, so it is atomic), ``link``,
  ``rename`` (atomic, over an existing target), ``unlink``, ``mkdir``, ``rmdir``,
  ``chmod``, ``chown``, ``utime``, ``fsync``, ``statfs``, ``access``, ``readlink``,
  ``symlink``: one request each, as on NFS; but FUSE first looks up a name it is
  about to create exclusively (O_EXCL, mkdir), even when "no such file" is cached:
  one request more than NFS, which skips that lookup;
* a directory listing: one request (libfuse reads the whole directory at once;
  NFS needs one READDIR per few hundred entries).

Kernel caching, chosen to behave like an NFS client with a short ``actimeo``:
attributes, names and negative lookups are cached for 1 s (``attr_timeout``,
``entry_timeout``, ``negative_timeout``); file data stays in the page cache
across opens unless the file's size or mtime changed (``auto_cache``: close-to-
open revalidation, one GETATTR per open); no direct I/O; inode numbers are
passed through (``use_ino``), so a hard link shows its target's inode. A file
unlinked while open is renamed to ``.fuse_hidden*`` until closed, as NFS renames
it to ``.nfs*``. ``renameat2`` flags are refused with EINVAL, as by NFS.

What it does not model:

* one client: every "node" of a benchmark is a process on this kernel, sharing
  one attribute and page cache, so there is no staleness between nodes and no
  difference between close-to-open and local semantics;
* no bandwidth limit, server load, jitter, retransmissions or hung hard mounts;
  data moves at local-disk speed plus one delay per request;
* no server-side fsync cost beyond this disk's (an NFS COMMIT may cost more),
  and no write-behind: a write reaches the server when it is made (an NFS
  client buffers writes until close or fsync and sends them in parallel), so
  write-heavy paths pay more here;
* ``flock``/``fcntl`` locks are kept by the kernel locally, with no round trip
  (gocachemgr's share uses lease files instead; see gocachemgr/store/lease.py);
* requests beyond ``MAX_THREADS`` at once queue (an NFS client has many slots);
* lookups and listings *in one directory* are served one at a time: libfuse 3.14
  never grants the kernel FUSE_PARALLEL_DIROPS (its INIT reply drops the flag), so
  the kernel serialises them per directory; an NFS client sends them in parallel.
  Lookups in different directories (gocachemgr's and go's 256 shard dirs) do run
  in parallel;
* files are created with the server's uid and gid (a benchmark runs as one user);
* FUSE itself costs some tens of µs per request on top of the delay.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import inspect
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from gocachemgr.mounts import read_mounts

REPO = Path(__file__).resolve().parent.parent
CACHE_SECONDS = 1.0  # attr/entry/negative timeouts: a short NFS actimeo
MAX_THREADS = 64  # requests served at once (libfuse's default of 10 would queue nodes)
MOUNT_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
UNMOUNT_TIMEOUT = 30.0
STDERR_TAIL = 4000
# utimensat's special nanosecond values, as libfuse passes them on (with tv_sec 0).
_UTIME_NOW = (1 << 30) - 1
_UTIME_OMIT = (1 << 30) - 2
_STAT_FIELDS = (
    "st_ino",
    "st_mode",
    "st_nlink",
    "st_uid",
    "st_gid",
    "st_rdev",
    "st_size",
    "st_blksize",
    "st_blocks",
)
_STATVFS_FIELDS = (
    "f_bsize",
    "f_frsize",
    "f_blocks",
    "f_bfree",
    "f_bavail",
    "f_files",
    "f_ffree",
    "f_favail",
    "f_flag",
    "f_namemax",
)

F = TypeVar("F", bound=Callable[..., Any])


class EmulatedNFSUnavailable(Exception):
    """No emulated mount can be made here; the message is ``availability()``'s reason."""


class MountFailed(RuntimeError):
    """The server did not bring the mount up; the message ends with its stderr."""


def availability() -> str | None:
    """None if an emulated mount can be made here, else the one-line reason (not root and
    no fusermount, no /dev/fuse, mfusepy or libfuse missing, ...)."""
    if not sys.platform.startswith("linux"):
        return f"FUSE passthrough needs Linux, this is {sys.platform}"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse (fuse kernel module not loaded, or a container without the device)"
    if os.geteuid() == 0:
        if not os.access("/dev/fuse", os.R_OK | os.W_OK):
            return "running as root but /dev/fuse is not readable and writable"
    elif _setuid_fusermount() is None:
        return "not root and no setuid fusermount3/fusermount (apt-get install fuse3)"
    try:
        import mfusepy  # noqa: F401  (the import loads libfuse: it fails when that is missing)
    except ImportError:
        return "mfusepy is not installed (pip install '.[bench]')"
    except (OSError, AttributeError) as exc:
        return f"mfusepy cannot use libfuse ({exc}); apt-get install fuse3 libfuse3-3"
    return None


def _setuid_fusermount() -> str | None:
    for name in ("fusermount3", "fusermount"):
        path = shutil.which(name)
        if path and os.stat(path).st_mode & stat.S_ISUID:
            return path
    return None


@contextlib.contextmanager
def emulated_nfs(backing: Path, mountpoint: Path, latency_ms: float) -> Iterator[Path]:
    """Mount a passthrough of `backing` at `mountpoint` (created if missing), every
    filesystem operation delayed by latency_ms; yield mountpoint; always unmount and
    stop the server at exit, also on errors and Ctrl-C."""
    reason = availability()
    if reason is not None:
        raise EmulatedNFSUnavailable(reason)
    if latency_ms < 0:
        raise ValueError(f"latency_ms must be >= 0, not {latency_ms!r}")
    backing = Path(os.path.realpath(backing))
    if not backing.is_dir():
        raise NotADirectoryError(f"backing dir {backing} is not a directory")
    mountpoint = Path(os.path.realpath(mountpoint))
    if mountpoint == backing or backing in mountpoint.parents or mountpoint in backing.parents:
        # The server reaches the backing dir by path: through its own mount, it would deadlock.
        raise ValueError(f"mountpoint {mountpoint} and backing dir {backing} must not nest")
    mountpoint.mkdir(parents=True, exist_ok=True)
    if _mounted(mountpoint):
        raise ValueError(f"{mountpoint} is already a mount point")
    command = [
        sys.executable,
        "-m",
        "benchmarks.nfsemu",
        "serve",
        str(backing),
        str(mountpoint),
        "--latency-ms",
        repr(latency_ms),
    ]
    with tempfile.TemporaryFile() as log:
        # A session of its own: Ctrl-C reaches only us, and we unmount in order.
        server = subprocess.Popen(
            command,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        try:
            _wait_until_mounted(server, mountpoint, log)
            yield mountpoint
        finally:
            _stop(server, mountpoint)


def _wait_until_mounted(server: subprocess.Popen[bytes], mountpoint: Path, log: Any) -> None:
    deadline = time.monotonic() + MOUNT_TIMEOUT
    while not os.path.ismount(mountpoint):
        if server.poll() is not None:
            raise MountFailed(
                f"nfsemu server exited with {server.returncode} before {mountpoint} was "
                f"mounted; its stderr: {_tail(log)}"
            )
        if time.monotonic() > deadline:
            raise MountFailed(
                f"{mountpoint} not mounted {MOUNT_TIMEOUT:g} s after starting the nfsemu "
                f"server; its stderr: {_tail(log)}"
            )
        time.sleep(0.02)


def _tail(log: Any) -> str:
    log.flush()
    log.seek(0)
    text = log.read().decode(errors="replace").strip()
    return text[-STDERR_TAIL:] or "(empty)"


def _stop(server: subprocess.Popen[bytes], mountpoint: Path) -> None:
    """Unmount (lazily if busy), then end the server: an unmount ends its loop, signals
    do if it does not; a killed server's dead mount is detached too."""
    if _mounted(mountpoint) and not _unmount(mountpoint, lazy=False):
        _unmount(mountpoint, lazy=True)  # busy: detached, but still served to its users
        server.terminate()  # so the server would not stop by itself until they let go
    for stop in (None, server.terminate, server.kill):
        if stop is not None:
            stop()
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(STOP_TIMEOUT)
            break  # not reached when wait times out: try the next, harder way
    if _mounted(mountpoint):
        _unmount(mountpoint, lazy=True)


def _mounted(mountpoint: Path) -> bool:
    """From mountinfo: a dead FUSE mount fails stat, so ``os.path.ismount`` says False."""
    return any(m.mount_point == str(mountpoint) for m in read_mounts({}))


def _unmount(mountpoint: Path, *, lazy: bool) -> bool:
    if os.geteuid() == 0:
        command = ["umount", *(["-l"] if lazy else []), str(mountpoint)]
    else:
        command = [_setuid_fusermount() or "fusermount3", "-u", *(["-z"] if lazy else [])]
        command.append(str(mountpoint))
    try:
        done = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, timeout=UNMOUNT_TIMEOUT
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


# -- the server ------------------------------------------------------------------


# libfuse answers these requests by calling getattr on the same path, in the same thread,
# after the operation: on NFS the reply carries those attributes, so that getattr is free.
_ATTRIBUTES_IN_REPLY = frozenset(
    {"create", "mkdir", "link", "symlink", "open", "chmod", "chown", "truncate", "utimens"}
)
# Per OS thread (libfuse's worker), not threading.local: each ctypes callback from a
# foreign thread gets a new Python thread state, and thread-locals with it.
_in_reply: dict[int, str | None] = {}


def _round_trip(method: F) -> F:
    """Delay the operation by the mount's latency before doing it: one request, one trip."""
    name = method.__name__

    @functools.wraps(method)
    def operation(self: Passthrough, *args: Any) -> Any:
        thread = threading.get_ident()
        in_reply = name == "getattr" and _in_reply.get(thread) == args[0]
        _in_reply[thread] = None
        if self.latency and not in_reply:
            time.sleep(self.latency)
        result = method(self, *args)
        if name in _ATTRIBUTES_IN_REPLY:
            _in_reply[thread] = args[0]  # link/symlink: args[0] is the new name
        return result

    return operation  # type: ignore[return-value]


def _every_operation_delayed(cls: type) -> type:
    for name, value in list(vars(cls).items()):
        if inspect.isfunction(value) and not name.startswith("_"):
            setattr(cls, name, _round_trip(value))
    return cls


@_every_operation_delayed
class Passthrough:
    """mfusepy operations: each public method is one FUSE request, done on the backing dir.

    mfusepy turns a raised OSError into its errno for the caller.
    """

    use_ns = True  # times in integer nanoseconds (mtime granularity matters to leases)

    def __init__(self, backing: Path, latency_ms: float) -> None:
        self._root = str(backing)
        self.latency = latency_ms / 1000

    def _real(self, path: str) -> str:
        return self._root + path  # libfuse passes "/"-rooted, normalised paths

    def access(self, path: str, amode: int) -> None:
        if not os.access(self._real(path), amode):
            raise OSError(errno.EACCES, os.strerror(errno.EACCES))

    def chmod(self, path: str, mode: int) -> None:
        os.chmod(self._real(path), mode)

    def chown(self, path: str, uid: int, gid: int) -> None:
        os.lchown(self._real(path), uid, gid)

    def create(self, path: str, mode: int, flags: int) -> int:
        return os.open(self._real(path), flags | os.O_CREAT, mode)  # O_EXCL kept: atomic

    def flush(self, path: str, fh: int) -> None:
        """close(2): writes are already on the backing file; only the round trip is left."""

    def fsync(self, path: str, datasync: int, fh: int) -> None:
        (os.fdatasync if datasync else os.fsync)(fh)

    def fsyncdir(self, path: str, datasync: int, fh: int) -> None:
        fd = os.open(self._real(path), os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def getattr(self, path: str, fh: int | None = None) -> dict[str, int]:
        st = os.lstat(self._real(path))
        attrs = {name: getattr(st, name) for name in _STAT_FIELDS}
        attrs.update(st_atime=st.st_atime_ns, st_mtime=st.st_mtime_ns, st_ctime=st.st_ctime_ns)
        return attrs

    def link(self, target: str, source: str) -> None:
        os.link(self._real(source), self._real(target))  # errno passed on if unsupported

    def mkdir(self, path: str, mode: int) -> None:
        os.mkdir(self._real(path), mode)

    def open(self, path: str, flags: int) -> int:
        return os.open(self._real(path), flags)

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        return os.pread(fh, size, offset)

    def readdir(self, path: str, fh: int) -> list[Any]:
        with os.scandir(self._real(path)) as entries:
            listed = [(e.name, {"st_mode": _type_bits(e), "st_ino": e.inode()}, 0) for e in entries]
        return [".", "..", *listed]  # first: mfusepy reuses one stat buffer for all entries

    def readlink(self, path: str) -> str:
        return os.readlink(self._real(path))

    def release(self, path: str, fh: int) -> None:
        os.close(fh)

    def rename(self, old: str, new: str) -> None:
        os.rename(self._real(old), self._real(new))

    def rmdir(self, path: str) -> None:
        os.rmdir(self._real(path))

    def statfs(self, path: str) -> dict[str, int]:
        st = os.statvfs(self._real(path))
        return {name: getattr(st, name) for name in _STATVFS_FIELDS}

    def symlink(self, target: str, source: str) -> None:
        os.symlink(source, self._real(target))  # creates target -> source

    def truncate(self, path: str, length: int, fh: int | None = None) -> None:
        os.truncate(self._real(path) if fh is None else fh, length)

    def unlink(self, path: str) -> None:
        os.unlink(self._real(path))

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> None:
        real = self._real(path)
        if times is None:
            os.utime(real, follow_symlinks=False)
            return
        current = os.lstat(real)
        now = time.time_ns()
        atime = _utime_value(times[0], current.st_atime_ns, now)
        mtime = _utime_value(times[1], current.st_mtime_ns, now)
        os.utime(real, ns=(atime, mtime), follow_symlinks=False)

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        return os.pwrite(fh, data, offset)


def _type_bits(entry: os.DirEntry[str]) -> int:
    """The file type for the listing (d_type), so readers need no stat to tell dirs apart."""
    if entry.is_symlink():
        return stat.S_IFLNK
    if entry.is_dir(follow_symlinks=False):
        return stat.S_IFDIR
    return stat.S_IFREG if entry.is_file(follow_symlinks=False) else 0


def _utime_value(value: int, current: int, now: int) -> int:
    return now if value == _UTIME_NOW else current if value == _UTIME_OMIT else value


def serve(backing: Path, mountpoint: Path, latency_ms: float) -> None:
    """Mount and serve in the foreground until unmounted or signalled (libfuse then unmounts)."""
    import mfusepy

    class FUSE(mfusepy.FUSE):
        def rename_fuse_3(self, old: bytes, new: bytes, flags: int) -> int:
            # mfusepy drops the flags. The kernel looks a NOREPLACE target up first, but a
            # file created behind its back in between must not be silently replaced.
            return -errno.EINVAL if flags else super().rename_fuse_3(old, new, flags)

    os.umask(0)  # the kernel applied the caller's umask already
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # one fd per file open on the mount
    _stop_with_parent()
    FUSE(
        Passthrough(backing, latency_ms),
        str(mountpoint),
        foreground=True,
        nothreads=False,
        fsname="nfsemu",
        subtype="nfsemu",
        attr_timeout=CACHE_SECONDS,
        entry_timeout=CACHE_SECONDS,
        negative_timeout=CACHE_SECONDS,
        auto_cache=True,
        use_ino=True,
        max_threads=MAX_THREADS,
    )


def _stop_with_parent() -> None:
    """A parent killed before it could unmount must not leave a mount behind: SIGTERM makes
    libfuse leave its loop and unmount. Sent to the main thread, the one libfuse waits in."""
    parent = os.getppid()
    main = threading.main_thread().ident
    assert main is not None

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        signal.pthread_kill(main, signal.SIGTERM)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.nfsemu",
        description="FUSE passthrough that delays every request, standing in for an NFS mount",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="mount BACKING at MOUNTPOINT in the foreground")
    run.add_argument("backing", type=Path)
    run.add_argument("mountpoint", type=Path)
    run.add_argument("--latency-ms", type=float, default=1.0, help="delay per request")
    args = parser.parse_args(argv)
    serve(args.backing, args.mountpoint, args.latency_ms)
    return 0


if __name__ == "__main__":
    sys.exit(main())
