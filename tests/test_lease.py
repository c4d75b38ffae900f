"""Lease locks with real files and real processes: exclusion, stale and live holders, damage.

Holders run as separate Python processes (``sys.executable -c``) so that
killing, stopping and pid checks are real. The one simulation: a lease "from
another machine" is a real lease whose boot id is rewritten after its holder
was killed, because a test cannot run a second machine.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gocachemgr.store.lease import Lease, LeaseTimeout, lease_name_for

REPO = Path(__file__).resolve().parent.parent

# argv: locks dir, stale_after, seconds to hold (< 0: until a line on stdin), marker file
HOLDER = """
import sys, time
from pathlib import Path
from gocachemgr.store.lease import Lease

stale_after, hold = float(sys.argv[2]), float(sys.argv[3])
lease = Lease(Path(sys.argv[1]), "job", what="a test holder", stale_after=stale_after)
lease.acquire()
print("held", flush=True)
if hold < 0:
    sys.stdin.readline()
    time.sleep(stale_after)  # a few heartbeats after the parent's go-ahead
else:
    time.sleep(hold)
Path(sys.argv[4]).touch()
print("lost" if lease.lost else "kept", flush=True)
lease.release()
"""

# argv: locks dir, counter file, increments
WORKER = """
import os, sys, time
from pathlib import Path
from gocachemgr.store.lease import Lease

locks, counter = Path(sys.argv[1]), Path(sys.argv[2])
for _ in range(int(sys.argv[3])):
    with Lease(locks, "counter", timeout=30):
        value = int(counter.read_text())
        time.sleep(0.0005)
        tmp = counter.with_name(f"counter.{os.getpid()}")
        tmp.write_text(str(value + 1))
        os.replace(tmp, counter)
"""

Spawn = Callable[..., "subprocess.Popen[str]"]


@pytest.fixture
def locks(tmp_path: Path) -> Path:
    path = tmp_path / "locks"
    path.mkdir()
    return path


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """Start a Python child in the repo; children still running at the end are killed."""
    children: list[subprocess.Popen[str]] = []

    def start(code: str, *args: object) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, *map(str, args)],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        children.append(proc)
        return proc

    yield start
    for proc in children:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@pytest.fixture
def hold(spawn: Spawn, locks: Path, tmp_path: Path) -> Callable[..., subprocess.Popen[str]]:
    """A child holding lease "job"; returns once it holds it."""

    def start(*, stale_after: float, seconds: float = -1) -> subprocess.Popen[str]:
        proc = spawn(HOLDER, locks, stale_after, seconds, tmp_path / "releasing")
        assert proc.stdout is not None
        assert proc.stdout.readline() == "held\n"
        return proc

    return start


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()  # reaped: a zombie's pid still answers kill(pid, 0)


def test_mutual_exclusion_across_processes(spawn: Spawn, locks: Path, tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    counter.write_text("0")
    workers = [spawn(WORKER, locks, counter, 50) for _ in range(4)]
    assert [w.wait(timeout=60) for w in workers] == [0] * 4
    assert counter.read_text() == "200"
    assert os.listdir(locks) == []  # no lease, no moved-aside file left behind


def test_lease_from_another_machine_is_broken_after_stale_after_not_before(
    hold: Callable[..., subprocess.Popen[str]], locks: Path
) -> None:
    kill(hold(stale_after=0.5))
    path = locks / "job.lease"
    record = json.loads(path.read_text())
    record["boot_id"] = "another-machine"  # its pid cannot be checked from here
    path.write_text(json.dumps(record))

    with pytest.raises(LeaseTimeout):
        Lease(locks, "job", stale_after=0.5, timeout=0.3).acquire()
    start = time.monotonic()
    with Lease(locks, "job", stale_after=0.5, timeout=5):
        waited = time.monotonic() - start
        assert json.loads(path.read_text())["token"] != record["token"]
    assert 0.5 <= waited < 2.5


def test_killed_holder_on_this_machine_is_broken_at_once(
    hold: Callable[..., subprocess.Popen[str]], locks: Path
) -> None:
    kill(hold(stale_after=30))
    start = time.monotonic()
    with Lease(locks, "job", stale_after=30, timeout=5):
        pass
    # Taken at once, and released at once: the heartbeat (every 7.5 s) stops on release.
    assert time.monotonic() - start < 1.0
    assert os.listdir(locks) == []


def test_live_holder_is_respected(
    hold: Callable[..., subprocess.Popen[str]], locks: Path, tmp_path: Path
) -> None:
    holder = hold(stale_after=0.5, seconds=2.0)
    with pytest.raises(LeaseTimeout) as info:
        Lease(locks, "job", what="a test waiter", stale_after=0.5, timeout=1.0).acquire()
    message = str(info.value)
    assert "\n" not in message
    for needle in (
        f"{socket.gethostname()}:{holder.pid} (a test holder)",
        "for a test waiter",
        "broken after 0.5 s without a heartbeat",
        f"delete {locks / 'job.lease'}",
    ):
        assert needle in message

    with Lease(locks, "job", stale_after=0.5, timeout=10):
        assert (tmp_path / "releasing").exists()  # got it only once the holder let go
    assert holder.communicate(timeout=10)[0] == "kept\n"
    assert holder.returncode == 0


def test_release_after_the_lease_was_broken_spares_the_new_holder(
    hold: Callable[..., subprocess.Popen[str]], locks: Path
) -> None:
    old = hold(stale_after=0.5)
    old.send_signal(signal.SIGSTOP)  # alive but silent: looks stale after 0.5 s
    try:
        start = time.monotonic()
        new = Lease(locks, "job", stale_after=0.5, timeout=5)
        new.acquire()
        assert time.monotonic() - start >= 0.5
    finally:
        old.send_signal(signal.SIGCONT)
    assert old.communicate("go\n", timeout=10)[0] == "lost\n"  # and it released
    assert old.returncode == 0

    path = locks / "job.lease"
    assert json.loads(path.read_text())["owner"] == f"{socket.gethostname()}:{os.getpid()}"
    assert not new.lost
    new.release()
    new.release()
    assert os.listdir(locks) == []


@pytest.mark.parametrize(
    "name", ["", ".hidden", "..", "a/b", "../x", "a b", "é", "a\x00b", "x" * 201]
)
def test_bad_names_are_refused(locks: Path, name: str) -> None:
    with pytest.raises(ValueError, match="refusing lease name"):
        Lease(locks, name)


def test_lease_name_for_is_short_stable_and_valid(locks: Path) -> None:
    assert lease_name_for("github.com/!foo/bar") == "github.com_foo_bar-069e8841a2eee491"
    keys = ["github.com/!foo/bar", "github.com/foo/bar", "a" * 1000, "../../x", "", ".", "é/ü"]
    names = {lease_name_for(key) for key in keys}
    assert len(names) == len(keys)
    for name in names:
        assert len(name) <= 100
        Lease(locks, name)  # valid


def _symlink(path: Path, victim: Path) -> None:
    path.symlink_to(victim)


def _directory(path: Path, victim: Path) -> None:
    path.mkdir()


def _fifo(path: Path, victim: Path) -> None:
    os.mkfifo(path)


@pytest.mark.parametrize("plant", [_symlink, _directory, _fifo])
def test_damage_at_the_lease_path_is_moved_aside_not_followed(
    locks: Path, tmp_path: Path, plant: Callable[[Path, Path], None]
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    path = locks / "job.lease"
    plant(path, victim)
    with Lease(locks, "job", stale_after=30, timeout=1):
        assert path.is_file() and not path.is_symlink()
        assert json.loads(path.read_text())["owner"].endswith(f":{os.getpid()}")
    assert victim.read_text() == "precious"
    assert os.listdir(locks) == []


def test_symlinked_locks_dir_is_refused(locks: Path, tmp_path: Path) -> None:
    link = tmp_path / "elsewhere"
    link.symlink_to(locks, target_is_directory=True)
    with pytest.raises(OSError):
        Lease(link, "job").acquire()
    assert os.listdir(locks) == []
