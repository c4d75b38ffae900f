"""End to end with the real go: warm local tier, a second node, many nodes at once."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.helpers import Node, compile_actions, copy_sample, warnings_in


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_warm_local_tier_runs_no_compile(
    make_node: Callable[..., Node], sample: Path, tmp_path: Path
) -> None:
    node = make_node("a", None)
    cold = node.go("build", "-x", "-o", str(tmp_path / "cold"), ".", cwd=sample)
    assert compile_actions(cold.stderr), "a cold build must compile"
    node.go("build", "fmt", "net/http", cwd=sample)

    warm = node.go("build", "-x", "-o", str(tmp_path / "warm"), ".", cwd=sample)
    warm_std = node.go("build", "-x", "fmt", "net/http", cwd=sample)

    assert compile_actions(warm.stderr) == []
    assert compile_actions(warm_std.stderr) == []
    run = subprocess.run([str(tmp_path / "warm")], capture_output=True, text=True, check=True)
    assert run.stdout.startswith("Hello, Gocachemgr!")
    stats = node.stats()
    assert stats["hits_local"] > 0 and stats["hits_shared"] == 0


def test_second_node_builds_from_shared_tier(
    make_node: Callable[..., Node], sample: Path, shared_dir: Path, tmp_path: Path
) -> None:
    a, b = make_node("a", shared_dir), make_node("b", shared_dir)
    a.go("build", "-o", str(tmp_path / "bin-a"), ".", cwd=sample)
    assert a.stats()["uploads_pending"] == 0

    built = b.go("build", "-x", "-o", str(tmp_path / "bin-b"), ".", cwd=sample)

    assert compile_actions(built.stderr) == []
    assert warnings_in(built.stderr) == []
    assert sha256(tmp_path / "bin-a") == sha256(tmp_path / "bin-b")
    stats = b.stats()
    assert stats["hits_shared"] > 0
    assert stats["misses"] <= 2  # only the link step's own entries are new


def test_four_nodes_build_concurrently(
    make_node: Callable[..., Node], tmp_path: Path, shared_dir: Path
) -> None:
    from gocachemgr.store.shared import SharedStore

    nodes = [make_node(f"n{i}", shared_dir) for i in range(4)]
    trees = [copy_sample(tmp_path / f"src{i}") for i in range(4)]

    def build(i: int) -> subprocess.CompletedProcess[str]:
        return nodes[i].go("build", "-trimpath", "-o", str(tmp_path / f"bin{i}"), ".", cwd=trees[i])

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(build, range(4)))

    assert all(r.returncode == 0 for r in results)
    digests = {sha256(tmp_path / f"bin{i}") for i in range(4)}
    assert len(digests) == 1, "with -trimpath every node must produce the same binary"
    for node in nodes:
        synced = node.run("sync", "--json")
        assert '"pending": 0' in synced.stdout
        assert node.stats()["uploads_pending"] == 0
    assert SharedStore(shared_dir).check() == []
