"""`gocachemgr gc` and the extended `gocachemgr stats`, with the real go and the real CLI.

One cold build of the sample (node A, with a share) is made once per module and
copied into each test that needs built caches.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gocachemgr.index import Index
from gocachemgr.sandbox import isolated_env
from gocachemgr.store import ActionEntry
from gocachemgr.store.shared import SharedStore
from tests.helpers import Node, copy_sample

DAY = 86400


@pytest.fixture(scope="module")
def warm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A share and node A's local dir after one cold build of the sample."""
    root = tmp_path_factory.mktemp("warm")
    (root / "share").mkdir()
    node = Node(root / "a", root / "share", isolated_env(root / "env"))
    node.go("build", "-o", str(root / "bin"), ".", cwd=copy_sample(root / "src"))
    yield root


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, symlinks=True)
    return dest


def _gc(node: Node, *args: str) -> dict:
    return json.loads(node.run("gc", "--json", *args).stdout)


def _tier(report: dict, name: str) -> dict:
    return next(t for t in report["tiers"] if t["tier"] == name)


def _bodies(local_dir: Path) -> list[Path]:
    return sorted((local_dir / "gocache").glob("??/*-d"))


def _age(path: Path, seconds: float) -> None:
    when = time.time() - seconds
    os.utime(path, (when, when))


# -- stats -----------------------------------------------------------------------------


def test_stats_latency_and_time_saved(
    warm: Path, make_node: Callable[..., Node], tmp_path: Path, sample: Path
) -> None:
    share = _copy(warm / "share", tmp_path / "share")
    a = Node(_copy(warm / "a", tmp_path / "a"), share, make_node("x", None).base_env)
    cold = a.stats()
    assert cold["misses"] > 0 and cold["get_miss_p50_us"] > 0
    records = [json.loads(p.read_text()) for p in (share / "actions").glob("*/*")]
    assert any(r.get("cost_ms", 0) > 0 for r in records), "uploads carry what the work cost"

    b = make_node("b", share)
    b.go("build", "-o", str(tmp_path / "bin"), ".", cwd=sample)
    stats = b.stats()
    hits = stats["hits_shared"] + stats["hits_local"]
    assert hits > 0
    assert stats["time_saved_ms"] > 0
    assert stats["time_saved_ms"] == stats["saved_ms_local"] + stats["saved_ms_shared"]
    tier = "shared" if stats["hits_shared"] else "local"  # prefetch may have copied ahead
    p50, p95, p99 = (stats[f"get_{tier}_p{q}_us"] for q in (50, 95, 99))
    assert 0 < p50 <= p95 <= p99 < 60_000_000
    assert stats["local_bytes"] > 0
    table = b.run("stats").stdout
    assert "p95" in table and "shared hits" in table and "time saved" in table


# -- gc: flags ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--max-size", "10XB"], "--max-size"),
        (["--max-age", "soon"], "--max-age"),
        (["--grace", "1 fortnight"], "--grace"),
        (["--tier", "everything"], "--tier"),
        (["--tier", "shared"], "no shared dir"),
    ],
)
def test_gc_bad_flags_are_one_line_errors(
    make_node: Callable[..., Node], args: list[str], needle: str
) -> None:
    proc = make_node("n", None).run("gc", *args, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gocachemgr: error:"), proc.stderr
    assert needle in lines[0]


# -- gc: local tier ---------------------------------------------------------------------


def test_local_lru_keeps_recent_and_removes_old(
    warm: Path, make_node: Callable[..., Node], tmp_path: Path, sample: Path
) -> None:
    node = Node(_copy(warm / "a", tmp_path / "a"), None, make_node("x", None).base_env)
    bodies = _bodies(node.local_dir)
    old, recent = bodies[::2], bodies[1::2]
    for i, path in enumerate(old):
        _age(path, 10 * DAY + i)  # distinct ages: a strict LRU order
    for path in recent:
        _age(path, 60)
    stale_tmp = node.local_dir / "gocache" / "00" / ".tmp-1-abcdef"
    stale_tmp.parent.mkdir(exist_ok=True)
    stale_tmp.write_bytes(b"left by a killed helper")
    _age(stale_tmp, 2 * DAY)

    dry = _tier(_gc(node, "--max-size", "1", "--dry-run"), "local")
    assert dry["files_removed"] == len(old) and dry["over_cap"]
    assert _bodies(node.local_dir) == bodies and stale_tmp.exists(), "--dry-run changes nothing"

    oldest = old[-3:]
    by_age = _tier(_gc(node, "--max-age", f"{10 * DAY + len(old) - 3.5}s"), "local")
    assert by_age["files_removed"] == 3 and by_age["temp_files_removed"] == 1
    assert not stale_tmp.exists()
    assert [p for p in oldest if p.exists()] == []

    report = _tier(_gc(node, "--max-size", "1"), "local")
    assert report["files_removed"] == len(old) - 3
    assert report["over_cap"], "recent entries are within --grace, so the cap is not reached"
    assert [p for p in old if p.exists()] == [] and all(p.exists() for p in recent)
    assert report["size_after"] == sum(p.stat().st_size for p in recent)
    index = Index(node.local_dir / "index")
    try:
        remaining = {e.output_id for _, e in index.actions()}
    finally:
        index.close()
    assert remaining <= {p.name[:-2] for p in recent}, "records go with their bodies"
    assert node.stats()["local_bytes"] == report["size_after"]

    node.go("build", "-o", str(tmp_path / "bin"), ".", cwd=sample)  # rebuilds what went


def test_auto_gc_runs_over_local_max_size(make_node: Callable[..., Node], tmp_path: Path) -> None:
    node = make_node("n", None)
    src = tmp_path / "tiny"
    src.mkdir()
    (src / "go.mod").write_text("module tiny\n\ngo 1.21\n")
    (src / "tiny.go").write_text("package tiny\n\nfunc Answer() int { return 42 }\n")
    node.go("build", ".", cwd=src)
    before = node.stats()
    assert before["gc_auto_runs"] == 0 and before["local_bytes"] > 0

    env = {**node.env, "GOCACHEMGR_LOCAL_MAX_SIZE": "1"}
    body = b"an old entry nothing uses"
    digest = hashlib.sha256(body).hexdigest()
    unused = node.local_dir / "gocache" / digest[:2] / f"{digest}-d"
    unused.parent.mkdir(exist_ok=True)
    unused.write_bytes(body)
    bodies = _bodies(node.local_dir)
    for path in bodies:
        _age(path, 10 * DAY)
    Node(node.local_dir, None, env).go("vet", ".", cwd=src)
    assert not unused.exists()
    after = node.stats()
    assert after["gc_auto_runs"] == 1 and after["gc_runs"] == 1
    assert after["gc_bytes_removed_local"] > 0
    kept = [p for p in bodies if p.exists()]
    assert len(kept) < len(bodies)
    assert all(p.stat().st_mtime > time.time() - 3600 for p in kept), "kept: vet just used them"


# -- gc: shared tier ----------------------------------------------------------------------


def _entry(shared: SharedStore, tmp: Path, body: bytes) -> ActionEntry:
    output_id = hashlib.sha256(body).hexdigest()
    src = tmp / output_id
    src.write_bytes(body)
    shared.put_object(output_id, len(body), str(src))
    return ActionEntry(output_id, len(body), time.time_ns())


def test_shared_gc_by_age_trash_grace_and_tmp(
    make_node: Callable[..., Node], shared_dir: Path, tmp_path: Path
) -> None:
    shared = SharedStore(shared_dir)
    shared.open()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    old_body, kept_body, both_body = b"old" * 100, b"kept" * 100, b"both" * 100
    ids = {name: name.encode().hex().ljust(64, "0") for name in ("old", "kept", "both1", "both2")}
    shared.put_action(ids["old"], _entry(shared, scratch, old_body))
    shared.put_action(ids["kept"], _entry(shared, scratch, kept_body))
    both = _entry(shared, scratch, both_body)
    shared.put_action(ids["both1"], both)
    shared.put_action(ids["both2"], both)
    for path in (shared_dir / "objects").glob("*/*"):
        _age(path, 10 * DAY)
    for name in ("old", "both1"):
        _age(shared.action_path(ids[name]), 10 * DAY)
    stale_tmp, fresh_tmp = shared_dir / "tmp" / ".tmp-1-aaaa", shared_dir / "tmp" / ".tmp-1-bbbb"
    stale_tmp.write_bytes(b"x")
    fresh_tmp.write_bytes(b"y")
    _age(stale_tmp, 2 * DAY)
    node = make_node("n", shared_dir)
    snapshot = sorted(p for p in shared_dir.rglob("*") if "locks" not in p.parts)

    dry = _tier(_gc(node, "--tier", "shared", "--max-age", "1d", "--dry-run"), "shared")
    assert dry["files_removed"] == 3  # old's record and object, both1's record
    assert sorted(p for p in shared_dir.rglob("*") if "locks" not in p.parts) == snapshot

    report = _tier(_gc(node, "--tier", "shared", "--max-age", "1d"), "shared")
    assert report["files_removed"] == 3 and report["temp_files_removed"] == 1
    assert not shared.action_path(ids["old"]).exists()
    assert not shared.has_object(hashlib.sha256(old_body).hexdigest())
    assert not stale_tmp.exists() and fresh_tmp.exists()
    assert shared.get_action(ids["both2"]) == both and shared.has_object(both.output_id), (
        "an object stays while a fresh record points to it"
    )
    assert shared.get_action(ids["kept"]) is not None
    assert len(list((shared_dir / "trash").iterdir())) == 3
    assert shared.check() == [f"temp file left {fresh_tmp}"]

    again = _tier(_gc(node, "--tier", "shared"), "shared")
    assert again["trash_deleted"] == 0, "trash keeps files for --grace (default 1h)"
    emptied = _tier(_gc(node, "--tier", "shared", "--grace", "0s"), "shared")
    assert emptied["trash_deleted"] == 3
    assert list((shared_dir / "trash").iterdir()) == []


def test_shared_gc_under_load(warm: Path, make_node: Callable[..., Node], tmp_path: Path) -> None:
    """gc with a small cap runs again and again while two empty nodes build from the share."""
    share = _copy(warm / "share", tmp_path / "share")
    cap = sum(p.stat().st_size for p in share.rglob("*") if p.is_file()) // 2
    nodes = [make_node(f"n{i}", share) for i in range(2)]
    trees = [copy_sample(tmp_path / f"src{i}") for i in range(2)]
    collector = make_node("gc", share)
    done = threading.Event()
    runs: list[dict] = []
    gc_errors: list[BaseException] = []

    def collect() -> None:
        try:
            while not done.is_set():
                runs.append(
                    _gc(collector, "--tier", "shared", "--max-size", str(cap), "--grace", "1s")
                )
        except BaseException as exc:  # a failed gc must fail the test, not just warn
            gc_errors.append(exc)

    def build(i: int) -> None:
        nodes[i].go("build", "-o", str(tmp_path / f"bin{i}"), ".", cwd=trees[i])

    gc_thread = threading.Thread(target=collect)
    gc_thread.start()
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(build, range(2)))  # raises if a build failed
    finally:
        done.set()
        gc_thread.join()
    assert gc_errors == [], gc_errors
    assert runs and any(_tier(r, "shared")["files_removed"] for r in runs), "gc did work"
    for node in nodes:
        node.run("sync")
    shared = SharedStore(share)
    assert shared.check() == [], "every record left has its object"

    final = _tier(
        _gc(collector, "--tier", "shared", "--max-size", str(cap), "--grace", "0s"), "shared"
    )
    assert final["size_after"] <= cap and not final["over_cap"]
    assert shared.check() == []
    left = sum(
        p.stat().st_size
        for d in ("actions", "objects", "artifacts")
        for p in (share / d).rglob("*")
        if p.is_file()
    )
    assert left <= cap
