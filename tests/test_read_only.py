"""Read-only mode ("CI writes, developers read") with the real go: a read-only node
serves hits from the share and leaves every file and directory in it untouched."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from gocachemgr.modules.synth import Upstream, upstream_fixture
from gocachemgr.sandbox import isolated_env
from gocachemgr.store import ActionEntry
from gocachemgr.store.atomic import AtomicFile
from gocachemgr.store.shared import SharedStore
from tests.helpers import Node, compile_actions, copy_sample, warnings_in
from tests.test_modules_e2e import copy_consumer, node_with, run_binary

Snapshot = dict[str, tuple[int, int, int]]


def snapshot(root: Path) -> Snapshot:
    """Every entry under ``root`` (root included) with its mtime, size and mode."""
    entries: Snapshot = {}
    for path in [root, *root.rglob("*")]:
        st = path.lstat()
        entries[str(path.relative_to(root))] = (st.st_mtime_ns, st.st_size, st.st_mode)
    return entries


@pytest.fixture(scope="module")
def writer(tmp_path_factory: pytest.TempPathFactory) -> Node:
    """Node A (read-write) after `gocachemgr build -trimpath` of the sample: the share holds
    its action entries, the output manifest, the package graph and the toolchain facts."""
    root = tmp_path_factory.mktemp("writer")
    share = root / "share"
    share.mkdir()
    node = Node(root / "a", share, isolated_env(root / "env"))
    sample = copy_sample(root / "sample")
    node.run("build", "-trimpath", "-o", str(root / "app"), ".", cwd=sample)
    assert node.stats()["uploads_pending"] == 0
    return node


def reader(writer: Node, local: Path, **env: str) -> Node:
    """A fresh node on the writer's share, with the same isolated homes."""
    return Node(local, writer.shared_dir, {**writer.base_env, **env})


def test_read_only_node_reads_the_share_and_writes_nothing(writer: Node, tmp_path: Path) -> None:
    assert writer.shared_dir is not None
    before = snapshot(writer.shared_dir)
    node = reader(writer, tmp_path / "b", GOCACHEMGR_READ_ONLY="1")
    sample = copy_sample(tmp_path / "sample")

    built = node.run(
        "--read-only",
        "go",
        "build",
        "-trimpath",
        "-x",
        "-o",
        str(tmp_path / "app"),
        ".",
        cwd=sample,
    )
    hit = node.run("build", "-trimpath", "-v", "-o", str(tmp_path / "app2"), ".", cwd=sample)
    (sample / "extra.go").write_text('package main\n\nfunc init() { println("edited") }\n')
    miss = node.run("build", "-trimpath", "-o", str(tmp_path / "app3"), ".", cwd=sample)

    assert compile_actions(built.stderr) == [], "every compile came from the share"
    assert "shared hit" in hit.stderr
    assert miss.returncode == 0 and (tmp_path / "app3").exists()
    for result in (built, hit, miss):
        assert warnings_in(result.stderr) == []
    stats = node.stats()
    assert stats["hits_shared"] > 0 and stats["builds_hit_shared"] == 1
    assert stats["puts"] > 0 and stats["uploads_pending"] == 0 and stats["uploads_done"] == 0
    assert snapshot(writer.shared_dir) == before


def test_commands_that_write_the_share_refuse_in_one_line(writer: Node, tmp_path: Path) -> None:
    node = reader(writer, tmp_path / "b", GOCACHEMGR_READ_ONLY="true")

    for args, action in (
        (("sync",), "sync"),
        (("mod", "push"), "publish modules"),
        (("mod", "verify"), "verify the module store"),
    ):
        result = node.run(*args, check=False)
        assert result.returncode == 2, result
        assert result.stderr.startswith(f"gocachemgr: error: cannot {action}: ")
        assert result.stderr.count("\n") == 1
        assert "read-only mode (read_only from env GOCACHEMGR_READ_ONLY)" in result.stderr


def test_empty_share_is_not_laid_out_by_a_read_only_node(
    writer: Node, tmp_path: Path, shared_dir: Path
) -> None:
    # The writer's local cache: the build needs no share, so only the start-up check runs.
    shutil.copytree(writer.local_dir, tmp_path / "b")
    node = Node(tmp_path / "b", shared_dir, writer.base_env)
    sample = copy_sample(tmp_path / "sample")

    built = node.run(
        "--read-only", "go", "build", "-trimpath", "-o", str(tmp_path / "app"), ".", cwd=sample
    )

    assert warnings_in(built.stderr) == [
        f"gocachemgr: warning: shared dir {shared_dir} is not initialised yet and this node is "
        f"read-only; a node that writes lays it out on its first go command; continuing with "
        f"the local cache only (modules from upstream)"
    ]
    assert os.listdir(shared_dir) == []
    assert node.stats()["uploads_pending"] == 0


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Upstream:
    return upstream_fixture(tmp_path_factory.mktemp("upstream"))


def test_module_downloads_of_a_read_only_node_are_not_published(
    writer: Node, upstream: Upstream, tmp_path: Path
) -> None:
    assert writer.shared_dir is not None
    before = snapshot(writer.shared_dir)
    node = node_with(
        tmp_path / "b",
        writer.shared_dir,
        {**writer.base_env, "GOCACHEMGR_READ_ONLY": "1"},
        upstream.goproxy,
    )
    consumer = copy_consumer(upstream, tmp_path / "src")

    built = node.go("build", "-trimpath", "-o", str(tmp_path / "app"), ".", cwd=consumer)

    assert run_binary(tmp_path / "app") == upstream.expected_output
    assert warnings_in(built.stderr) == []
    assert list((node.local_dir / "gomodcache" / "cache" / "download").rglob("*.zip"))
    assert node.stats()["modules_published"] == 0
    assert snapshot(writer.shared_dir) == before


def test_read_only_store_never_writes_even_when_asked(writer: Node) -> None:
    """The store's own backstop: puts fail with EROFS, damage is reported but not moved."""
    assert writer.shared_dir is not None
    before = snapshot(writer.shared_dir)
    reported: list[str] = []
    store = SharedStore(writer.shared_dir, on_corrupt=reported.append, read_only=True)
    store.open()
    action_id = next((writer.shared_dir / "actions").glob("*/*")).name
    entry = store.get_action(action_id)
    assert entry is not None
    liar = ActionEntry(entry.output_id, entry.size + 1, entry.time_ns)

    with pytest.raises(OSError, match="read-only mode"):
        store.put_action(action_id, entry)
    with pytest.raises(OSError, match="read-only mode"):
        store.put_manifest("0" * 32, b"{}")
    with AtomicFile(writer.local_dir / "tmp") as dest:
        assert not store.read_object_into(action_id, liar, dest)

    assert len(reported) == 1 and "left in place by this read-only node" in reported[0]
    assert snapshot(writer.shared_dir) == before
