"""Faults with the real go, real processes and real files: kills, damage, bad shares.

Every build here uses ``-trimpath`` so binaries built on different nodes (and
from different source copies) compare byte for byte. One module-scoped
"golden" node builds the sample and runs its tests once; tests that need a
populated share work on their own copy of it, so they stay independent.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gocachemgr.index import Index
from gocachemgr.sandbox import isolated_env
from gocachemgr.store.atomic import TEMP_PREFIX
from gocachemgr.store.local import LocalStore
from gocachemgr.store.shared import SharedStore
from tests.helpers import Node, copy_sample, run_with_readonly_share, warnings_in

BINARY = "gocachemgr-sample"  # what `go build -o DIR/ .` names the sample's binary
GREETING = "Hello, Gocachemgr!"


# -- helpers -------------------------------------------------------------------------


@dataclass(frozen=True)
class Golden:
    """A share filled by a fresh node: the sample built (-trimpath) and its tests run."""

    share: Path
    local_dir: Path
    reference: Path  # the sample binary built by that fresh node
    build_objects: frozenset[str]  # object ids in the share right after the build


def local_problems(local_dir: Path) -> list[str]:
    index = Index(local_dir / "index")
    try:
        return LocalStore(gocache_dir=str(local_dir / "gocache"), index=index).check()
    finally:
        index.close()


def pending_actions(local_dir: Path) -> list[str]:
    index = Index(local_dir / "index")
    try:
        return [action_id for action_id, _ in index.pending()]
    finally:
        index.close()


def share_problems(share: Path) -> list[str]:
    """Damaged objects, malformed or dangling records: everything but temp-file garbage.

    A killed process may leave a temp file in ``tmp/``; it is never served, so
    it is garbage for gc, not damage.
    """
    return [p for p in SharedStore(share).check() if not p.startswith("temp file left")]


def temp_files_in_place(share: Path) -> list[Path]:
    """Temp files where readers look (objects/, actions/): must never exist."""
    return [p for kind in ("objects", "actions") for p in share.glob(f"{kind}/*/{TEMP_PREFIX}*")]


class TempWatcher:
    """Scans objects/ and actions/ in the background while builds run, for temp files."""

    def __init__(self, share: Path) -> None:
        self.share = share
        self.seen: set[Path] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.seen.update(temp_files_in_place(self.share))

    def __enter__(self) -> TempWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.seen.update(temp_files_in_place(self.share))


def find_cacheprog(local_dir: Path) -> int | None:
    """The pid of a running ``gocachemgr.cacheprog`` serving the node at ``local_dir``."""
    wanted = f"GOCACHEMGR_LOCAL_DIR={local_dir}".encode()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                if b"gocachemgr.cacheprog" not in f.read():
                    continue
            with open(f"/proc/{name}/environ", "rb") as f:
                if wanted in f.read().split(b"\0"):
                    return int(name)
        except OSError:
            continue  # exited while we looked
    return None


@dataclass
class Attempt:
    delay: float
    killed: bool
    returncode: int
    stderr: str


def build_and_kill(node: Node, args: list[str], cwd: Path, delay: float) -> Attempt:
    """Start ``gocachemgr go ARGS``; ``delay`` s later SIGKILL its cacheprog (if still running)."""
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gocachemgr", "go", *args],
        cwd=cwd, env=node.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    killed = False
    while proc.poll() is None:
        if time.monotonic() - start >= delay:
            pid = find_cacheprog(node.local_dir)
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed = True
                except ProcessLookupError:
                    pass
                break
        time.sleep(0.005)
    _, stderr = proc.communicate(timeout=120)
    return Attempt(delay, killed, proc.returncode, stderr)


def binary_output(path: Path) -> str:
    return subprocess.run([str(path)], capture_output=True, text=True, check=True).stdout


def edit_greet(tree: Path) -> None:
    """A source change that forces new compiles (so the build has puts to upload)."""
    greet = tree / "greet" / "greet.go"
    greet.write_text(greet.read_text() + "\n// edited by test_faults\n")


# -- fixtures ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Golden]:
    root = tmp_path_factory.mktemp("golden")
    share = root / "share"
    share.mkdir()
    node = Node(root / "node", share, isolated_env(root / "env"))
    tree = copy_sample(root / "sample")
    node.go("build", "-trimpath", "-o", f"{root / 'ref'}/", ".", cwd=tree)
    build_objects = frozenset(p.name for p in share.glob("objects/*/*"))
    node.go("test", "-trimpath", "./...", cwd=tree)
    assert node.stats()["uploads_pending"] == 0
    yield Golden(share, node.local_dir, root / "ref" / BINARY, build_objects)


@pytest.fixture
def golden_share(golden: Golden, tmp_path: Path) -> Path:
    """This test's own copy of the golden share."""
    return Path(shutil.copytree(golden.share, tmp_path / "share"))


# -- 1. kill -9 of the cacheprog mid-build ---------------------------------------------


def test_kill_cacheprog_mid_build_leaves_stores_consistent(
    make_node: Callable[..., Node], sample: Path, shared_dir: Path, tmp_path: Path,
    golden: Golden,
) -> None:
    """SIGKILL the helper at seeded random points: cold builds on node A (puts, uploads),
    then on node B with an empty local dir (shared fetches). Afterwards both nodes
    build, the binaries equal a fresh node's, and neither tier holds damage."""
    rng = random.Random(20250101)
    a, b = make_node("a", shared_dir), make_node("b", shared_dir)
    attempts: list[Attempt] = []

    def args(out: str) -> list[str]:
        return ["build", "-trimpath", "-o", f"{tmp_path / out}/", ".", "fmt", "encoding/json"]

    with TempWatcher(shared_dir) as watcher:
        for i, delay in enumerate(sorted(rng.uniform(0.4, 3.5) for _ in range(4))):
            attempts.append(build_and_kill(a, args(f"a{i}"), sample, delay))
        a_final = a.go(*args("a"), cwd=sample)
        for i, delay in enumerate(rng.uniform(0.05, 0.6) for _ in range(3)):
            attempts.append(build_and_kill(b, args(f"b{i}"), sample, delay))
        b_final = b.go(*args("b"), cwd=sample)

    reference = golden.reference.read_bytes()
    killed = [t for t in attempts if t.killed]
    assert len(killed) >= 4, attempts
    # go fails the build when its helper dies (usually "GOCACHEPROG exited pre-Close";
    # a kill mid-reply or mid-request gives a JSON or pipe error instead).
    failed = [t for t in killed if t.returncode != 0]
    assert len(failed) >= 4, attempts
    assert any("GOCACHEPROG exited pre-Close" in t.stderr for t in failed), attempts
    for i, attempt in enumerate(attempts):
        assert "Traceback" not in attempt.stderr, attempt
        if attempt.returncode == 0:  # finished before the kill: its binary must be right
            name = f"a{i}" if i < 4 else f"b{i - 4}"
            assert (tmp_path / name / BINARY).read_bytes() == reference
    assert "Traceback" not in a_final.stderr + b_final.stderr

    for name in ("a", "b"):
        assert (tmp_path / name / BINARY).read_bytes() == reference
        assert binary_output(tmp_path / name / BINARY).startswith(GREETING)

    assert watcher.seen == set(), "temp files must never appear under objects/ or actions/"
    assert local_problems(a.local_dir) == []
    assert local_problems(b.local_dir) == []
    assert share_problems(shared_dir) == []
    # What a kill left pending is uploaded by the next run or by sync.
    for node in (a, b):
        assert '"pending": 0' in node.run("sync", "--json").stdout
    assert share_problems(shared_dir) == []
    assert temp_files_in_place(shared_dir) == []


# -- 2. damaged shared objects -----------------------------------------------------------


def test_damaged_shared_objects_are_quarantined_and_rebuilt(
    make_node: Callable[..., Node], sample: Path, golden: Golden, golden_share: Path,
    tmp_path: Path,
) -> None:
    share = golden_share
    archives = sorted(
        (p for p in share.glob("objects/*/*")
         if p.name in golden.build_objects and p.read_bytes()[:8] == b"!<arch>\n"),
        key=lambda p: (p.stat().st_size, p.name),
    )
    flipped, truncated = archives[0], archives[1]  # small packages: cheap to recompile
    originals = {flipped: flipped.read_bytes(), truncated: truncated.read_bytes()}
    data = bytearray(originals[flipped])
    data[len(data) // 2] ^= 0x01
    flipped.write_bytes(bytes(data))
    truncated.write_bytes(originals[truncated][: len(originals[truncated]) // 2])

    b = make_node("b", share)
    built = b.go("build", "-trimpath", "-o", f"{tmp_path / 'out'}/", ".", cwd=sample)

    assert (tmp_path / "out" / BINARY).read_bytes() == golden.reference.read_bytes()
    stats = b.stats()
    assert stats["corrupt"] == 2
    assert stats["hits_shared"] > 0
    warnings = warnings_in(built.stderr)
    assert len(warnings) == 1, built.stderr
    assert "quarantined" in warnings[0]
    quarantined = {p.read_bytes() for p in (share / "quarantine").iterdir()}
    assert quarantined == {bytes(data), originals[truncated][: len(originals[truncated]) // 2]}
    # B recompiled both packages and re-uploaded the good bodies: the share is whole again.
    assert flipped.read_bytes() == originals[flipped]
    assert truncated.read_bytes() == originals[truncated]
    assert b.stats()["uploads_pending"] == 0
    assert SharedStore(share).check() == []
    assert local_problems(b.local_dir) == []


# -- 3. unusable shares: local-only with one warning ------------------------------------------


@pytest.mark.parametrize("kind", ["missing", "regular-file", "read-only-empty"])
def test_unusable_share_builds_local_only(
    kind: str, make_node: Callable[..., Node], sample: Path, golden: Golden, tmp_path: Path,
) -> None:
    """A warm node (copy of the golden node's local dir) whose share cannot be used
    builds an edited tree: new compiles, puts kept locally and pending, one warning."""
    share = tmp_path / "share"
    if kind == "regular-file":
        share.write_text("not a directory\n")
    elif kind == "read-only-empty":
        share.mkdir()
    node = make_node("n", share)
    shutil.copytree(golden.local_dir, node.local_dir)
    node.zero_stats()
    edit_greet(sample)
    args = ("go", "build", "-trimpath", "-o", f"{tmp_path / 'out'}/", ".")

    if kind == "read-only-empty":
        built = run_with_readonly_share(node, share, *args, cwd=sample)
        assert built.returncode == 0, built.stderr
    else:
        built = node.run(*args, cwd=sample)

    warnings = warnings_in(built.stderr)
    assert len(warnings) == 1, built.stderr
    assert "local cache only" in warnings[0]
    assert binary_output(tmp_path / "out" / BINARY).startswith(GREETING)
    stats = node.stats()
    assert stats["degraded_runs"] == 1
    assert stats["hits_shared"] == 0 and stats["hits_local"] > 0
    assert stats["puts"] > 0 and stats["uploads_pending"] > 0 and stats["uploads_done"] == 0
    if kind == "missing":
        assert not share.exists(), "a missing share must not be created locally"
    elif kind == "regular-file":
        assert share.read_text() == "not a directory\n"
    else:
        assert list(share.iterdir()) == []
    assert local_problems(node.local_dir) == []


def test_populated_read_only_share_serves_hits_and_keeps_uploads_pending(
    make_node: Callable[..., Node], sample: Path, golden_share: Path, tmp_path: Path,
) -> None:
    share = golden_share
    before = sorted(p.relative_to(share) for p in share.rglob("*"))
    b = make_node("b", share)
    edit_greet(sample)

    built = run_with_readonly_share(
        b, share, "go", "build", "-trimpath", "-o", f"{tmp_path / 'out'}/", ".", cwd=sample
    )

    assert built.returncode == 0, built.stderr
    warnings = warnings_in(built.stderr)
    assert len(warnings) == 1, built.stderr
    assert "not writable" in warnings[0]
    assert binary_output(tmp_path / "out" / BINARY).startswith(GREETING)
    stats = b.stats()
    assert stats["hits_shared"] > 0
    assert stats["uploads_pending"] > 0
    assert sorted(p.relative_to(share) for p in share.rglob("*")) == before
    pending = pending_actions(b.local_dir)

    synced = b.run("sync", "--json")  # the share is writable outside the namespace

    assert '"pending": 0' in synced.stdout
    assert b.stats()["uploads_pending"] == 0
    store = SharedStore(share)
    assert all(store.action_path(action_id).exists() for action_id in pending)
    assert store.check() == []


# -- 5. go clean -testcache vs. results from the shared tier -------------------------------


def test_clean_testcache_expires_results_from_the_share(
    make_node: Callable[..., Node], sample: Path, golden_share: Path,
) -> None:
    """The golden node ran `go test` earlier; its results carry their original put time."""
    c = make_node("c", golden_share)
    cached = c.go("test", "-trimpath", "./...", cwd=sample)
    assert cached.stdout.count("(cached)") == 2, cached.stdout
    assert c.stats()["hits_shared"] > 0

    b = make_node("b", golden_share)
    b.go("clean", "-testcache", cwd=sample)
    rerun = b.go("test", "-trimpath", "./...", cwd=sample)

    assert "(cached)" not in rerun.stdout, rerun.stdout
    assert sum(line.startswith("ok  ") for line in rerun.stdout.splitlines()) == 2, rerun.stdout
    assert b.stats()["hits_shared"] > 0  # the share did answer; the results were too old


# -- a share that hangs: bounded by shared_timeout, also at start-up ---------------------------


def hung_share(path: Path) -> Path:
    """A share whose FORMAT is a FIFO: opening it blocks like a dead hard NFS mount.

    A real filesystem object, not a mock: ``open(2)`` on a FIFO without a
    writer sleeps until one appears, so the start-up check hangs for real.
    """
    path.mkdir()
    os.mkfifo(path / "FORMAT")
    return path


def test_hung_share_build_goes_on_local_only(
    make_node: Callable[..., Node], sample: Path, golden: Golden, tmp_path: Path,
) -> None:
    share = hung_share(tmp_path / "share")
    node = make_node("n", share)
    shutil.copytree(golden.local_dir, node.local_dir)
    edit_greet(sample)
    node.base_env = {**node.base_env, "GOCACHEMGR_SHARED_TIMEOUT": "1"}

    start = time.monotonic()
    built = node.go("build", "-trimpath", "-o", f"{tmp_path / 'out'}/", ".", cwd=sample,
                    timeout=60)

    assert time.monotonic() - start < 30
    warnings = warnings_in(built.stderr)
    assert len(warnings) == 1, built.stderr
    assert "did not answer" in warnings[0]
    assert binary_output(tmp_path / "out" / BINARY).startswith(GREETING)


def test_sync_against_a_hung_share_fails_within_shared_timeout(
    make_node: Callable[..., Node], tmp_path: Path,
) -> None:
    """Regression: the start-up check ran on a pool thread, which the interpreter joins
    at exit, so `gocachemgr sync` printed its error and then hung for ever."""
    node = make_node("n", hung_share(tmp_path / "share"))
    node.base_env = {**node.base_env, "GOCACHEMGR_SHARED_TIMEOUT": "1"}

    start = time.monotonic()
    try:
        synced = node.run("sync", check=False, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("gocachemgr sync hung on a share that does not answer")

    assert time.monotonic() - start < 15
    assert synced.returncode != 0
    assert "cannot sync" in synced.stderr and "did not answer" in synced.stderr
