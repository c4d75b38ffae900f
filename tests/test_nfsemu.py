"""The emulated NFS mount (benchmarks/nfsemu.py) on a real FUSE mount: the passthrough does
what gocachemgr and go do on a share, every request pays the latency, and no mount or server
outlives its context. Skipped, with the reason, where no FUSE mount can be made."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import os
import secrets
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from benchmarks import nfsemu
from benchmarks.nfsemu import (
    EmulatedNFSUnavailable,
    MountFailed,
    availability,
    emulated_nfs,
)
from gocachemgr.store import ActionEntry
from gocachemgr.store.atomic import TEMP_PREFIX, AtomicFile
from gocachemgr.store.lease import Lease, LeaseTimeout
from gocachemgr.store.shared import SharedStore

REASON = availability()
LATENCY_MS = 1.0


def need_fuse() -> None:
    if REASON is not None:
        pytest.skip(f"no emulated NFS mount here: {REASON}")


@pytest.fixture(scope="module")
def mount(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One mount for the module (1 ms per request); each test works in its own dir."""
    need_fuse()
    root = tmp_path_factory.mktemp("nfsemu")
    (root / "backing").mkdir()
    with emulated_nfs(root / "backing", root / "mnt", LATENCY_MS) as mountpoint:
        yield mountpoint


@pytest.fixture
def d(mount: Path) -> Path:
    path = mount / secrets.token_hex(4)
    path.mkdir()
    return path


def backing_of(path: Path, mount: Path) -> Path:
    return mount.parent / "backing" / path.relative_to(mount)


def servers_for(mountpoint: Path) -> list[int]:
    """Pids of nfsemu servers still serving ``mountpoint``."""
    wanted = os.fsencode(os.path.realpath(mountpoint))
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"benchmarks.nfsemu" in argv and wanted in argv:
            found.append(int(pid))
    return found


def gone(mountpoint: Path) -> bool:
    real = Path(os.path.realpath(mountpoint))
    return not nfsemu._mounted(real) and not servers_for(real)


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# -- the passthrough ---------------------------------------------------------------


def test_writes_are_read_back_and_land_in_the_backing_dir(d: Path, mount: Path) -> None:
    (d / "f").write_bytes(b"x" * 3_000_000)  # several FUSE write requests
    assert (d / "f").read_bytes() == b"x" * 3_000_000
    assert backing_of(d / "f", mount).read_bytes() == b"x" * 3_000_000
    (d / "sub").mkdir()
    assert sorted(os.listdir(d)) == ["f", "sub"]
    assert {e.name: e.is_dir() for e in os.scandir(d)} == {"f": False, "sub": True}
    with open(d / "f", "r+b") as f:
        f.truncate(5)
        os.fsync(f.fileno())
    os.chmod(d / "f", 0o640)
    assert os.stat(d / "f").st_size == 5
    assert stat.S_IMODE(os.stat(d / "f").st_mode) == 0o640
    assert os.statvfs(d).f_bsize > 0
    os.unlink(d / "f")
    os.rmdir(d / "sub")
    assert os.listdir(backing_of(d, mount)) == []


def test_exclusive_create_fails_on_an_existing_file(d: Path, mount: Path) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    os.close(os.open(d / "lock", flags, 0o664))
    with pytest.raises(FileExistsError):
        os.open(d / "lock", flags, 0o664)
    # Another node creates the file while this kernel still caches "no such file":
    # an exclusive create looks the name up again, and the backing dir's O_EXCL decides.
    assert not (d / "other").exists()
    backing_of(d / "other", mount).write_bytes(b"")
    with pytest.raises(FileExistsError):
        os.open(d / "other", flags, 0o664)


def test_rename_replaces_an_existing_target(d: Path) -> None:
    (d / "new").write_bytes(b"new")
    (d / "old").write_bytes(b"old")
    os.rename(d / "new", d / "old")
    assert (d / "old").read_bytes() == b"new"
    assert not (d / "new").exists()


def test_rename_noreplace_never_replaces(d: Path, mount: Path) -> None:
    """mfusepy drops renameat2's flags: a NOREPLACE that replaced would break atomic publish."""
    libc = ctypes.CDLL(None, use_errno=True)
    at_fdcwd, rename_noreplace = -100, 1

    def rename_noreplace_(old: Path, new: Path) -> tuple[int, int]:
        result = libc.renameat2(at_fdcwd, bytes(old), at_fdcwd, bytes(new), rename_noreplace)
        return result, ctypes.get_errno()

    (d / "a").write_bytes(b"a")
    (d / "b").write_bytes(b"b")
    assert rename_noreplace_(d / "a", d / "b") == (-1, errno.EEXIST)
    assert not (d / "c").exists()  # cached: no such file
    backing_of(d / "c", mount).write_bytes(b"c")  # another node creates it
    assert rename_noreplace_(d / "a", d / "c") == (-1, errno.EEXIST)  # looked up again
    assert backing_of(d / "c", mount).read_bytes() == b"c"
    assert (d / "a").read_bytes() == b"a"


def test_hard_links_share_the_inode(d: Path) -> None:
    (d / "a").write_bytes(b"body")
    os.link(d / "a", d / "b")
    assert os.stat(d / "a").st_ino == os.stat(d / "b").st_ino
    assert os.stat(d / "b").st_nlink == 2
    with pytest.raises(FileExistsError):
        os.link(d / "a", d / "b")


def test_symlinks_can_be_lstat_ed_and_read(d: Path) -> None:
    os.symlink("elsewhere", d / "link")
    assert stat.S_ISLNK(os.lstat(d / "link").st_mode)
    assert os.readlink(d / "link") == "elsewhere"
    with pytest.raises(OSError) as raised:
        os.open(d / "link", os.O_RDONLY | os.O_NOFOLLOW)
    assert raised.value.errno == errno.ELOOP


def test_utime_now_and_explicit_times(d: Path) -> None:
    (d / "f").write_bytes(b"")
    os.utime(d / "f", ns=(5_000_000_123, 7_000_000_456))
    assert (os.stat(d / "f").st_atime_ns, os.stat(d / "f").st_mtime_ns) == (
        5_000_000_123,
        7_000_000_456,
    )
    os.utime(d / "f")  # "now": what a lease heartbeat does
    assert abs(os.stat(d / "f").st_mtime_ns - time.time_ns()) < 5_000_000_000


# -- latency -----------------------------------------------------------------------


def test_every_lookup_pays_the_latency(d: Path) -> None:
    n = 1000
    start = time.perf_counter()
    for i in range(n):
        assert not os.path.lexists(d / f"missing-{i}")  # distinct: none cached
    assert time.perf_counter() - start >= n * LATENCY_MS / 1000


def test_requests_in_different_dirs_are_served_in_parallel(tmp_path: Path) -> None:
    need_fuse()
    latency_ms, threads, per_thread = 20.0, 8, 5
    (tmp_path / "backing").mkdir()
    for k in range(threads):
        (tmp_path / "backing" / f"d{k}").mkdir()
    with emulated_nfs(tmp_path / "backing", tmp_path / "mnt", latency_ms) as mountpoint:
        for k in range(threads):  # lookups in one dir are serialised: not timed
            os.stat(mountpoint / f"d{k}")

        def probe(k: int) -> None:
            for i in range(per_thread):
                os.path.lexists(mountpoint / f"d{k}" / f"x{i}")

        workers = [threading.Thread(target=probe, args=(k,)) for k in range(threads)]
        start = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - start
    serial = threads * per_thread * latency_ms / 1000  # 0.8 s
    assert per_thread * latency_ms / 1000 <= elapsed < serial / 2


def test_a_setattr_is_one_round_trip(tmp_path: Path) -> None:
    """libfuse follows the utimens with a getattr; it must not pay the latency twice."""
    need_fuse()
    latency_ms, n = 20.0, 10
    (tmp_path / "backing").mkdir()
    (tmp_path / "backing" / "f").write_bytes(b"")
    with emulated_nfs(tmp_path / "backing", tmp_path / "mnt", latency_ms) as mountpoint:
        os.stat(mountpoint / "f")  # looked up before timing
        start = time.perf_counter()
        for _ in range(n):
            os.utime(mountpoint / "f")
        trips = (time.perf_counter() - start) / n / (latency_ms / 1000)
    assert 1 <= trips < 1.5


# -- gocachemgr on the mount ---------------------------------------------------------


def test_shared_store_round_trip(d: Path, tmp_path: Path) -> None:
    (d / "share").mkdir()
    shared = SharedStore(d / "share")
    shared.open()
    body = secrets.token_bytes(300_000)
    output_id = hashlib.sha256(body).hexdigest()
    src = tmp_path / "body"
    src.write_bytes(body)
    assert shared.put_object(output_id, len(body), str(src)) is True
    assert shared.put_object(output_id, len(body), str(src)) is False  # already there
    action_id = hashlib.sha256(b"action").hexdigest()
    entry = ActionEntry(output_id, len(body), 1_700_000_000_000_000_001)
    shared.put_action(action_id, entry)

    again = SharedStore(d / "share")
    again.open()
    assert again.get_action(action_id) == entry
    (tmp_path / "local").mkdir()
    with AtomicFile(tmp_path / "local") as dest:
        assert again.read_object_into(action_id, entry, dest) is True
        dest.commit(tmp_path / "restored")
    assert (tmp_path / "restored").read_bytes() == body
    assert not list((d / "share").rglob(f"{TEMP_PREFIX}*"))


def test_lease_is_exclusive_and_kept_alive_on_the_mount(d: Path) -> None:
    (d / "locks").mkdir()
    holder = Lease(d / "locks", "job", stale_after=0.4, timeout=1.0)
    with holder:
        # Waiting 0.8 s, twice stale_after: only heartbeats (utime through the mount)
        # keep the lease from being broken, so the waiter must time out.
        with pytest.raises(LeaseTimeout):
            Lease(d / "locks", "job", stale_after=0.4, timeout=0.8).acquire()
        assert not holder.lost
    with Lease(d / "locks", "job", stale_after=0.4, timeout=0.5):
        pass


# -- mount and server lifetime -------------------------------------------------------


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_unmounts_and_stops_on_errors(tmp_path: Path, error: type[BaseException]) -> None:
    need_fuse()
    (tmp_path / "backing").mkdir()
    mountpoint = tmp_path / "mnt"
    with pytest.raises(error), emulated_nfs(tmp_path / "backing", mountpoint, 0):
        assert os.path.ismount(mountpoint)
        raise error()
    assert gone(mountpoint)


def test_a_busy_mount_is_detached_and_its_server_stopped(tmp_path: Path) -> None:
    need_fuse()
    (tmp_path / "backing").mkdir()
    mountpoint = tmp_path / "mnt"
    with emulated_nfs(tmp_path / "backing", mountpoint, 0):
        busy = open(mountpoint / "open-at-exit", "wb")  # noqa: SIM115
    try:
        assert wait_for(lambda: gone(mountpoint))
    finally:
        with contextlib.suppress(OSError):
            busy.close()  # its server is gone (ENOTCONN)


def test_server_unmounts_when_its_parent_is_killed(tmp_path: Path) -> None:
    need_fuse()
    (tmp_path / "backing").mkdir()
    mountpoint = tmp_path / "mnt"
    script = (
        "import sys, time; from pathlib import Path; from benchmarks.nfsemu import emulated_nfs\n"
        "with emulated_nfs(Path(sys.argv[1]), Path(sys.argv[2]), 0):\n"
        "    print('up', flush=True); time.sleep(60)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "backing"), str(mountpoint)],
        cwd=nfsemu.REPO,
        stdout=subprocess.PIPE,
    )
    try:
        assert parent.stdout is not None and parent.stdout.readline() == b"up\n"
        assert nfsemu._mounted(mountpoint)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    assert wait_for(lambda: gone(mountpoint))


def test_a_server_that_cannot_start_is_reported_with_its_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need_fuse()
    (tmp_path / "backing").mkdir()
    monkeypatch.setattr(nfsemu, "REPO", tmp_path)  # no benchmarks package to run there
    with (
        pytest.raises(MountFailed, match="No module named 'benchmarks"),
        emulated_nfs(tmp_path / "backing", tmp_path / "mnt", 0),
    ):
        pass
    assert gone(tmp_path / "mnt")


def test_refusals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "backing").mkdir()
    monkeypatch.setattr(nfsemu, "availability", lambda: None)
    with (
        pytest.raises(ValueError, match="must not nest"),
        emulated_nfs(tmp_path / "backing", tmp_path / "backing" / "mnt", 0),
    ):
        pass
    monkeypatch.setattr(nfsemu, "availability", lambda: "no /dev/fuse (test)")
    with (
        pytest.raises(EmulatedNFSUnavailable, match=r"no /dev/fuse \(test\)"),
        emulated_nfs(tmp_path / "backing", tmp_path / "mnt", 0),
    ):
        pass
