"""`gocachemgr build` with a live watcher: faster, and never less correct.

Killed watcher, lost events and renamed directories must all fall back to
results identical to a plain `go build`.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gocachemgr.config import Config
from gocachemgr.index import Index
from gocachemgr.toolchain import find_go
from gocachemgr.watch import WatchState
from tests.helpers import Node


@pytest.fixture
def watcher(
    make_node: Callable[..., Node], sample: Path
) -> Iterator[tuple[Node, subprocess.Popen[str]]]:
    node = make_node("a", None)
    node.local_dir.mkdir(parents=True)
    proc = subprocess.Popen(
        [sys.executable, "-P", "-m", "gocachemgr", "watch", str(sample)],
        env=node.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("watching")
    yield node, proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def key_info(node: Node, sample: Path) -> dict[str, object]:
    return json.loads(node.run("key", "--json", ".", cwd=sample).stdout)


def assert_same_as_plain_go(node: Node, sample: Path, tmp_path: Path) -> None:
    ours, ref = tmp_path / "ours", tmp_path / "ref"
    node.run("build", "-o", str(ours), ".", cwd=sample)
    env = {**node.base_env, "GOCACHE": str(tmp_path / "plain-cache")}
    subprocess.run(
        [find_go(Config.load()), "build", "-o", str(ref), "."],
        cwd=sample,
        env=env,
        check=True,
        capture_output=True,
    )
    assert ours.read_bytes() == ref.read_bytes()


def test_unchanged_tree_with_live_watcher_touches_no_file(
    watcher: tuple[Node, subprocess.Popen[str]], sample: Path, tmp_path: Path
) -> None:
    node, _ = watcher
    first = key_info(node, sample)
    again = key_info(node, sample)
    assert again["key"] == first["key"]
    assert again["files_statted"] == 0 and again["files_hashed"] == 0

    greet = sample / "greet" / "greet.go"
    greet.write_text(greet.read_text().replace('"Hello, "', '"Hi there, "'))
    edited = key_info(node, sample)
    assert edited["key"] != first["key"]
    assert edited["files_hashed"] >= 1
    assert_same_as_plain_go(node, sample, tmp_path)


def test_renamed_directory_with_watcher(
    watcher: tuple[Node, subprocess.Popen[str]], sample: Path, tmp_path: Path
) -> None:
    node, _ = watcher
    node.run("build", "-o", str(tmp_path / "before"), ".", cwd=sample)
    (sample / "stats").rename(sample / "numbers")
    main = sample / "main.go"
    main.write_text(
        main.read_text().replace("gocachemgr-sample/stats", "gocachemgr-sample/numbers")
    )
    assert_same_as_plain_go(node, sample, tmp_path)


def test_killed_watcher_falls_back_to_stat_checks(
    watcher: tuple[Node, subprocess.Popen[str]], sample: Path, tmp_path: Path
) -> None:
    node, proc = watcher
    key_info(node, sample)
    key_info(node, sample)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    stats = sample / "stats" / "stats.go"
    stats.write_text(
        stats.read_text().replace(
            "return sum / float64(len(xs))", "return sum / float64(len(xs)) * 1"
        )
    )
    after = key_info(node, sample)
    assert after["files_statted"] > 0, "without a live watcher every file is stat-checked"
    assert_same_as_plain_go(node, sample, tmp_path)


def test_lost_events_fall_back_to_stat_checks(
    watcher: tuple[Node, subprocess.Popen[str]], sample: Path, tmp_path: Path
) -> None:
    node, _ = watcher
    key_info(node, sample)
    index = Index(node.local_dir / "index")
    try:
        WatchState(index).mark_overflow(str(sample.resolve()))  # what the watcher logs on overflow
    finally:
        index.close()
    after = key_info(node, sample)
    assert after["files_statted"] > 0
    assert_same_as_plain_go(node, sample, tmp_path)
