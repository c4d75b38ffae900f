"""`gocachemgr warm`, `warm --pull` and the automatic prefetch of what a workspace used.

The real go builds the sample once per module (``warmed``): a CI node warms a
share for the host (with tests) and for linux/arm64. Each test then gives a
fresh node its own hard-linked copy of that share, as a new CI runner would see it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from gocachemgr.prefetch import Prefetcher
from gocachemgr.sandbox import isolated_env
from gocachemgr.store import ActionEntry
from gocachemgr.store.shared import SharedStore
from gocachemgr.usage import MAX_AGE, MAX_IDS, decode, encode, merge, workspace_key
from tests.helpers import Node, compile_actions, copy_sample
from tests.protocol_helpers import Live, action, close_store, go_request, open_store
from tests.test_server import publish


@dataclass
class Warmed:
    share: Path
    sample: Path
    env: dict[str, str]
    reports: list[dict[str, object]]

    def fresh_node(self, tmp_path: Path, name: str, **extra_env: str) -> Node:
        """A new node with an empty local dir and its own copy of the warmed share."""
        share = tmp_path / f"share-{name}"
        shutil.copytree(self.share, share, copy_function=os.link)
        return Node(tmp_path / name, share, {**self.env, **extra_env})


@pytest.fixture(scope="module")
def warmed(tmp_path_factory: pytest.TempPathFactory) -> Warmed:
    root = tmp_path_factory.mktemp("warmed")
    env = isolated_env(root / "env")
    share = root / "share"
    share.mkdir()
    sample = copy_sample(root / "sample")
    ci = Node(root / "ci", share, env)
    reports = [
        json.loads(ci.run("warm", "--tests", "--json", cwd=sample).stdout),
        json.loads(ci.run("warm", "--platform", "linux/arm64", "--json", cwd=sample).stdout),
    ]
    return Warmed(share, sample, env, reports)


def test_warm_reports_its_steps_and_uploads(warmed: Warmed) -> None:
    host, arm = warmed.reports
    assert host["ok"] and arm["ok"]
    commands = [step["command"] for step in host["steps"]]  # type: ignore[attr-defined]
    assert commands == ["go mod download", "go build -o <tmp>/ ./...", "go test -run ^$ ./..."]
    assert [s["platform"] for s in arm["steps"]] == ["linux/arm64"] * 2  # type: ignore[attr-defined]
    assert host["uploaded"] > 100 and host["uploaded_bytes"] > 0 and host["pending"] == 0
    assert arm["uploaded"] > 100  # the arm64 standard library is new to the share
    assert SharedStore(warmed.share).check() == []
    assert list((warmed.share / "artifacts" / "used").glob("*/*")), "used lists published"


def test_fresh_node_tests_compile_nothing_after_warm(warmed: Warmed, tmp_path: Path) -> None:
    node = warmed.fresh_node(tmp_path, "b", GOCACHEMGR_PREFETCH="false")
    tested = node.go("test", "-x", "./...", cwd=warmed.sample)
    assert compile_actions(tested.stderr) == []
    assert "ok  \texample.com/gocachemgr-sample/greet" in tested.stdout


def test_warm_for_arm64_serves_a_fresh_arm64_build(warmed: Warmed, tmp_path: Path) -> None:
    node = warmed.fresh_node(tmp_path, "arm", GOARCH="arm64")
    built = node.go("build", "-x", "./...", cwd=warmed.sample)
    assert compile_actions(built.stderr) == []
    assert node.stats()["hits_shared"] + node.stats()["prefetch_used"] > 0


def test_prefetch_copies_what_the_workspace_used(warmed: Warmed, tmp_path: Path) -> None:
    node = warmed.fresh_node(tmp_path, "b")
    built = node.go("build", "-x", "./...", cwd=warmed.sample)
    assert compile_actions(built.stderr) == []
    stats = node.stats()
    assert stats["prefetched"] > 0 and stats["prefetch_bytes"] > 0
    assert stats["prefetch_used"] > 0  # go's gets found prefetched entries in the local tier
    # Each use is a hit: local, or (rarely) shared when go's get raced the copy.
    assert stats["hits_local"] + stats["hits_shared"] >= stats["prefetch_used"]


def test_prefetch_off_fetches_nothing_ahead(warmed: Warmed, tmp_path: Path) -> None:
    node = warmed.fresh_node(tmp_path, "b", GOCACHEMGR_PREFETCH="false")
    node.go("build", "./...", cwd=warmed.sample)
    stats = node.stats()
    assert stats["prefetched"] == 0 and stats["prefetch_used"] == 0
    assert stats["hits_shared"] > 0


def test_warm_pull_fills_the_local_tier(warmed: Warmed, tmp_path: Path) -> None:
    node = warmed.fresh_node(tmp_path, "b", GOCACHEMGR_PREFETCH="false")
    pulled = json.loads(node.run("warm", "--pull", "--json", cwd=warmed.sample).stdout)
    assert pulled["lists"] == 1 and pulled["fetched"] > 0 and pulled["fetched_bytes"] > 0
    assert pulled["over_budget"] == 0

    built = node.go("build", "-x", "./...", cwd=warmed.sample)
    assert compile_actions(built.stderr) == []
    stats = node.stats()
    assert stats["hits_shared"] == 0 and stats["hits_local"] > 0  # all local after the pull


def test_warm_pull_without_a_recorded_build(make_node, sample: Path, shared_dir: Path) -> None:  # type: ignore[no-untyped-def]
    proc = make_node("a", shared_dir).run("warm", "--pull", cwd=sample)
    assert "no build of this workspace is recorded yet" in proc.stdout


@pytest.mark.parametrize(
    ("args", "shared", "message"),
    [
        (["warm", "--platform", "linux/nosucharch"], True, "unknown platform 'linux/nosucharch'"),
        (["warm", "--platform", "linux"], True, "unknown platform 'linux'"),
        (["warm"], False, "no shared dir configured"),
        (["warm", "--pull", "./..."], True, "--pull takes no PATTERNS"),
        (["--read-only", "warm"], True, "cannot warm the shared dir: this node is in read-only"),
    ],
)
def test_warm_refuses_in_one_line(  # type: ignore[no-untyped-def]
    make_node, sample: Path, shared_dir: Path, args: list[str], shared: bool, message: str
) -> None:
    node = make_node("a", shared_dir if shared else None)
    proc = node.run(*args, cwd=sample, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gocachemgr: error: ") and message in lines[0]
    assert "Traceback" not in proc.stderr


# -- the used list ---------------------------------------------------------------


def test_workspace_key_is_node_independent(tmp_path: Path) -> None:
    a, b = copy_sample(tmp_path / "a"), copy_sample(tmp_path / "elsewhere" / "b")
    env = {"GOOS": "linux", "GOARCH": "amd64"}
    assert workspace_key(str(a), env) == workspace_key(str(b), env)
    assert workspace_key(str(a / "greet"), env) == workspace_key(str(b / "greet"), env)
    assert workspace_key(str(a / "greet"), env) != workspace_key(str(a), env)
    assert workspace_key(str(a), {**env, "GOARCH": "arm64"}) != workspace_key(str(a), env)


def test_used_list_merges_ages_and_caps() -> None:
    ids = [f"{n:064x}" for n in range(5)]
    first = merge(None, ids[:3])
    assert first == [(ids[0], 0), (ids[1], 0), (ids[2], 0)]
    second = merge(first, [ids[3], ids[1], ids[3]])
    assert second == [(ids[3], 0), (ids[1], 0), (ids[0], 1), (ids[2], 1)]
    assert decode(encode(second)) == second
    faded = first
    for _ in range(MAX_AGE + 1):
        faded = merge(faded, [ids[4]])
    assert faded == [(ids[4], 0)]  # unused for MAX_AGE runs: dropped
    big = merge(None, (f"{n:064x}" for n in range(MAX_IDS + 10)))
    assert len(big) == MAX_IDS and len(encode(big)) < 1 << 20
    assert decode(b"something else") is None and decode(encode(big)[:-1]) is None


# -- the prefetch inside the helper (no go: the real Server over real stores) -------


class PrefetchSlowShared(SharedStore):
    """Fault-injection fake: a real SharedStore whose record reads wait on ``gate`` in
    the prefetch's threads only (an NFS server slow for the prefetch), and which counts
    the record reads per action id."""

    def __init__(self, root: Path, gate: threading.Event) -> None:
        super().__init__(root)
        self.gate = gate
        self.reads: Counter[str] = Counter()
        self._lock = threading.Lock()

    def get_action(self, action_id: str) -> ActionEntry | None:
        with self._lock:
            self.reads[action_id] += 1
        if threading.current_thread().name == "prefetch":
            self.gate.wait(30)
        return super().get_action(action_id)


def _share_with(tmp_path: Path, count: int) -> Path:
    root = tmp_path / "share"
    root.mkdir()
    for n in range(count):
        publish(root, action(n), f"body {n}".encode() * 100, time.time_ns(), tmp_path)
    return root


def test_go_requests_go_first_and_are_never_fetched_twice(tmp_path: Path) -> None:
    gate = threading.Event()
    shared = PrefetchSlowShared(_share_with(tmp_path, 6), gate)
    store = open_store(tmp_path / "node", shared)
    prefetcher = Prefetcher(store, max_bytes=1 << 30, workers=3)
    queued = [action(n).hex() for n in range(5)]  # action 5 is on the share, not in the list

    async def main() -> None:
        async with Live(store) as live:
            live.server.prefetcher = prefetcher
            prefetcher.add(queued)
            while len(shared.reads) < 3:  # all three workers stuck on the slow share
                await asyncio.sleep(0.01)

            started = time.monotonic()
            first = await live.ask(go_request(1, "get", action(5)), 1)
            assert "DiskPath" in first and time.monotonic() - started < 2

            live.write(go_request(2, "get", action(0)))  # being prefetched right now
            await asyncio.sleep(0.2)
            assert not live.answered(2)  # waits for the copy under way, does not read again
            third = await live.ask(go_request(3, "get", action(4)), 3)  # queued: go takes it
            assert "DiskPath" in third
            gate.set()
            second = await live.reply(2)
            assert "DiskPath" in second
            await live.finish(close_id=4)

    try:
        asyncio.run(main())
        assert max(shared.reads.values()) == 1, "an entry was read from the share twice"
        assert all(shared.reads[action(n).hex()] == 1 for n in (0, 4, 5))
        counters = store.local.index.counters()
        # Action 0 at least (go waited for it); close may stop the others mid-way.
        assert counters["prefetch_used"] == 1 and counters["prefetched"] >= 1
        assert counters["hits_shared"] == 2  # actions 5 and 4, fetched for go
    finally:
        gate.set()
        close_store(store)


def test_close_does_not_wait_for_the_prefetch(tmp_path: Path) -> None:
    gate = threading.Event()
    shared = PrefetchSlowShared(_share_with(tmp_path, 8), gate)
    store = open_store(tmp_path / "node", shared)
    prefetcher = Prefetcher(store, max_bytes=1 << 30, workers=2)

    async def main() -> float:
        async with Live(store) as live:
            live.server.prefetcher = prefetcher
            prefetcher.add(action(n).hex() for n in range(8))
            while len(shared.reads) < 2:
                await asyncio.sleep(0.01)
            started = time.monotonic()
            await live.finish(close_id=1)
            return time.monotonic() - started

    try:
        assert asyncio.run(main()) < 2
        gate.set()
        assert prefetcher.wait(10)
        assert len(shared.reads) == 2  # the queue was dropped at close
    finally:
        gate.set()
        close_store(store)


def test_prefetch_stays_within_its_byte_budget(tmp_path: Path) -> None:
    store = open_store(tmp_path / "node", SharedStore(_share_with(tmp_path, 6)))
    try:
        size = len(b"body 0" * 100)
        prefetcher = Prefetcher(store, max_bytes=size * 4 + 1)
        prefetcher.add(action(n).hex() for n in range(6))
        assert prefetcher.wait(10)
        assert len(prefetcher.fetched) == 4 and prefetcher.over_budget == 2
        assert sum(store.local.get(action(n).hex()) is not None for n in range(6)) == 4
    finally:
        close_store(store)
