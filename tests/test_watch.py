"""The watcher with real watchdog observers, real trees and a real lmdb index.

The property under test: a trusted answer from ``changes_since`` names every
path changed since the caller's look, and every situation in which the log
cannot vouch for that (no watcher, dead watcher, late watcher, lost events,
wrong root, compacted log, replaced root) answers untrusted.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gocachemgr.index import Index
from gocachemgr.watch import (
    COOKIE_PREFIX,
    Changes,
    WatchError,
    WatchState,
    _entries_for_event,
    run_watcher,
)


@dataclass
class Watcher:
    """A run_watcher thread; ``error`` holds what it raised, if anything."""

    thread: threading.Thread
    stop_event: threading.Event
    error: list[BaseException] = field(default_factory=list)

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = Path(os.path.realpath(tmp_path)) / "src"
    (root / "pkg").mkdir(parents=True)
    (root / "main.go").write_text("package main\n")
    (root / "pkg" / "pkg.go").write_text("package pkg\n")
    return root


@pytest.fixture
def index(tmp_path: Path) -> Iterator[Index]:
    idx = Index(tmp_path / "index")
    yield idx
    idx.close()


@pytest.fixture
def state(index: Index) -> WatchState:
    return WatchState(index)


@pytest.fixture
def start_watcher(index: Index) -> Iterator[Callable[..., Watcher]]:
    started: list[Watcher] = []

    def start(*roots: Path, **kwargs: object) -> Watcher:
        stop = threading.Event()
        ready = threading.Event()
        errors: list[BaseException] = []

        def target() -> None:
            try:
                run_watcher(list(roots), index, stop=stop, on_ready=ready.set, **kwargs)  # type: ignore[arg-type]
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        assert ready.wait(10), errors
        watcher = Watcher(thread, stop, errors)
        started.append(watcher)
        return watcher

    yield start
    for watcher in started:
        watcher.stop()


def look(state: WatchState, root: Path, seq: int) -> Changes:
    return state.changes_since(str(root), seq, time.time_ns())


def trusted_look(state: WatchState, root: Path, seq: int, timeout: float = 5.0) -> Changes:
    """Retry until trusted: a loaded machine may miss one sync deadline."""
    deadline = time.monotonic() + timeout
    while True:
        changes = look(state, root, seq)
        if changes.trusted or time.monotonic() > deadline:
            assert changes.trusted, changes.reason
            return changes
        time.sleep(0.05)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_without_a_watcher_nothing_is_trusted(state: WatchState, tree: Path) -> None:
    changes = look(state, tree, state.current_seq())
    assert not changes.trusted
    assert "no watcher" in changes.reason
    assert not any(p.name.startswith(COOKIE_PREFIX) for p in tree.iterdir())


def test_every_kind_of_change_is_in_the_next_trusted_look(
    state: WatchState, tree: Path, tmp_path: Path, start_watcher: Callable[..., Watcher]
) -> None:
    start_watcher(tree)
    seq = state.current_seq()
    assert trusted_look(state, tree, seq).paths == frozenset()

    def changed_after(action: Callable[[], None], *expected: Path) -> frozenset[str]:
        nonlocal seq
        action()
        # No polling for the change itself: the sync round trip guarantees a
        # trusted answer already includes everything done before the call.
        changes = trusted_look(state, tree, seq)
        for path in expected:
            assert str(path) in changes.paths, (path, changes)
        seq = changes.seq
        return changes.paths

    main, pkg = tree / "main.go", tree / "pkg"
    changed_after(lambda: main.write_text("package main // edited\n"), main)
    created = changed_after(lambda: (tree / "new.go").write_text("package main\n"), tree / "new.go")
    assert str(tree) not in created  # a new file does not dirty its whole directory
    changed_after(lambda: (tree / "new.go").unlink(), tree / "new.go")
    changed_after(lambda: main.rename(tree / "renamed.go"), main, tree / "renamed.go")
    changed_after(lambda: pkg.rename(tree / "lib"), pkg, tree / "lib")
    changed_after(lambda: (tree / "lib" / "pkg.go").write_text("x"), tree / "lib" / "pkg.go")

    def new_dir_with_file() -> None:
        (tree / "fresh").mkdir()
        (tree / "fresh" / "f.go").write_text("package fresh\n")

    changed_after(new_dir_with_file, tree / "fresh")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "o.go").write_text("package o\n")
    changed_after(lambda: outside.rename(tree / "moved_in"), tree / "moved_in")
    changed_after(lambda: (tree / "lib").rename(tmp_path / "moved_out"), tree / "lib")
    changed_after(lambda: os.utime(tree / "renamed.go", (1, 1)), tree / "renamed.go")
    assert not any(p.name.startswith(COOKIE_PREFIX) for p in tree.iterdir())


def test_unchanged_tree_is_recognised_in_milliseconds(
    state: WatchState, tree: Path, start_watcher: Callable[..., Watcher]
) -> None:
    start_watcher(tree)
    seq = state.current_seq()
    trusted_look(state, tree, seq)
    timings = []
    for _ in range(20):
        started = time.perf_counter()
        changes = look(state, tree, seq)
        timings.append(time.perf_counter() - started)
        assert changes.trusted and not changes.paths
    assert statistics.median(timings) < 0.1, timings


def test_a_subdirectory_is_covered_but_siblings_and_parents_are_not(
    state: WatchState, tree: Path, tmp_path: Path, start_watcher: Callable[..., Watcher]
) -> None:
    sibling = tree.parent / "sibling"
    sibling.mkdir()
    start_watcher(tree)
    seq = state.current_seq()
    (tree / "pkg" / "pkg.go").write_text("package pkg // edited\n")
    (tree / "main.go").write_text("package main // edited\n")

    sub = trusted_look(state, tree / "pkg", seq)
    assert sub.paths == {str(tree / "pkg" / "pkg.go")}  # only what is under the asked root
    assert "no watcher covers" in look(state, sibling, seq).reason
    assert "no watcher covers" in look(state, tree.parent, seq).reason

    # A dirty ancestor (say the root's parent was moved) means the whole asked root.
    state.mark_dirty([str(tree)])
    assert trusted_look(state, tree / "pkg", seq).paths >= {str(tree / "pkg")}


def test_a_dead_watcher_record_does_not_spoil_a_live_one(
    state: WatchState, tree: Path, start_watcher: Callable[..., Watcher]
) -> None:
    start_watcher(tree)
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    exited.wait()
    state.register(str(tree.parent), exited.pid, time.time_ns())  # e.g. a killed watcher
    seq = state.current_seq()
    assert "not running" in look(state, tree.parent, seq).reason
    assert trusted_look(state, tree, seq).trusted


def test_a_watcher_started_after_the_look_is_not_trusted_for_it(
    state: WatchState, tree: Path, start_watcher: Callable[..., Watcher]
) -> None:
    before = state.current_seq()
    (tree / "main.go").write_text("unseen by any watcher\n")
    start_watcher(tree)
    changes = look(state, tree, before)
    assert not changes.trusted and "started after" in changes.reason
    # A fresh look (seq read after the watcher registered, then a full stat) is trusted.
    assert trusted_look(state, tree, changes.seq).paths == frozenset()


def test_lost_events_make_looks_before_them_untrusted(
    state: WatchState, tree: Path, start_watcher: Callable[..., Watcher]
) -> None:
    start_watcher(tree, max_pending=5, batch_s=0.2)
    seq = state.current_seq()
    trusted_look(state, tree, seq)
    for i in range(300):
        (tree / f"burst{i}.go").write_text("package main\n")
    wait_until(lambda: "were lost" in look(state, tree, seq).reason)
    # As a caller would: after an untrusted answer, stat-check everything and
    # look again from the answer's seq. Once the burst is over that is trusted.
    fresh = look(state, tree, seq).seq
    deadline = time.monotonic() + 10
    while not (changes := look(state, tree, fresh)).trusted:
        assert time.monotonic() < deadline, changes.reason
        fresh = changes.seq
        time.sleep(0.05)


def test_watchdog_overflow_is_logged_as_lost_events(
    state: WatchState, tree: Path, start_watcher: Callable[..., Watcher]
) -> None:
    from watchdog.events import EventsLostEvent

    # inotify's kernel queue (16384 events) is hard to overflow on purpose,
    # so feed the translation the event watchdog emits for IN_Q_OVERFLOW.
    entries, cookie = _entries_for_event(
        str(tree), os.getpid(), EventsLostEvent(str(tree), is_directory=True),
        skip_dir_modified=True,
    )
    assert entries == [b"O" + os.fsencode(tree)] and not cookie

    start_watcher(tree)
    seq = state.current_seq()
    state.mark_overflow(str(tree / "pkg"))  # loss in a subtree untrusts the whole root
    assert "were lost" in look(state, tree, seq).reason
    assert "were lost" in look(state, tree / "pkg", seq).reason
    assert trusted_look(state, tree, state.current_seq()).trusted


def test_a_stale_heartbeat_is_not_trusted(
    state: WatchState, tree: Path, start_watcher: Callable[..., Watcher]
) -> None:
    start_watcher(tree, heartbeat_s=0.2)
    seq = state.current_seq()
    trusted_look(state, tree, seq)
    later = state.changes_since(str(tree), seq, time.time_ns() + 5 * 10**9)
    assert not later.trusted and "stale heartbeat" in later.reason


def test_a_compacted_log_cannot_vouch_for_old_looks(
    state: WatchState, tree: Path, start_watcher: Callable[..., Watcher]
) -> None:
    start_watcher(tree)
    old = state.current_seq()
    (tree / "main.go").write_text("edited\n")
    middle = trusted_look(state, tree, old).seq
    (tree / "pkg" / "pkg.go").write_text("edited\n")
    state.compact(middle)
    assert "compacted" in look(state, tree, old).reason
    assert trusted_look(state, tree, middle).paths == {str(tree / "pkg" / "pkg.go")}


def test_a_replaced_root_stops_the_watcher(
    state: WatchState, tree: Path, tmp_path: Path, start_watcher: Callable[..., Watcher]
) -> None:
    watcher = start_watcher(tree, heartbeat_s=0.1)
    seq = state.current_seq()
    tree.rename(tmp_path / "old-src")
    tree.mkdir()  # same path, another directory: the watch still follows the old one
    assert not look(state, tree, seq).trusted
    watcher.thread.join(timeout=5)
    assert watcher.error and isinstance(watcher.error[0], WatchError)
    assert "replaced" in str(watcher.error[0]) or "deleted" in str(watcher.error[0])
    assert state.watchers() == []


def test_an_unwatchable_subtree_stops_the_watcher(
    state: WatchState, tree: Path, start_watcher: Callable[..., Watcher]
) -> None:
    watcher = start_watcher(tree)
    # What watchdog logs (and otherwise ignores) when the inotify watch limit is hit.
    logging.getLogger("watchdog.observers.inotify").warning(
        "Unable to watch %r: %s", os.fsencode(tree / "pkg"), "inotify watch limit reached"
    )
    watcher.thread.join(timeout=5)
    assert watcher.error and "max_user_watches" in str(watcher.error[0])
    assert state.watchers() == []


def gocachemgr_watch(local: Path, *roots: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gocachemgr", "--local-dir", str(local), "watch", *map(str, roots)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def ready_line(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> str:
    assert proc.stdout is not None
    readable, _, _ = select.select([proc.stdout], [], [], timeout)
    assert readable, "watcher did not become ready"
    return proc.stdout.readline().decode()


def test_cli_watcher_killed_restarted_and_stopped(tmp_path: Path, tree: Path) -> None:
    local = tmp_path / "local"
    first = gocachemgr_watch(local, tree)
    try:
        assert ready_line(first).startswith(f"watching {tree}")
        index = Index(local / "index")
        state = WatchState(index)
        seq = state.current_seq()
        (tree / "main.go").write_text("edited\n")
        assert trusted_look(state, tree, seq).paths == {str(tree / "main.go")}

        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        after_kill = look(state, tree, seq)
        assert not after_kill.trusted and "not running" in after_kill.reason

        second = gocachemgr_watch(local, tree)
        try:
            ready_line(second)
            # Changes while nothing watched are invisible to the new watcher:
            # the old look stays untrusted, a fresh one is trusted.
            restarted = look(state, tree, seq)
            assert not restarted.trusted and "started after" in restarted.reason
            fresh = state.current_seq()
            (tree / "pkg" / "pkg.go").write_text("edited\n")
            assert trusted_look(state, tree, fresh).paths == {str(tree / "pkg" / "pkg.go")}
        finally:
            second.send_signal(signal.SIGTERM)
            _out, err = second.communicate(timeout=10)
        assert second.returncode == 0, err
        assert err == b""
        assert {w.pid for w in state.watchers()} <= {first.pid}  # only the killed one's record
        assert "no watcher covers" in look(state, tree, fresh).reason
        index.close()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_cli_watch_rejects_a_bad_root_in_one_line(tmp_path: Path, kind: str) -> None:
    bad = tmp_path / "nothing"
    if kind == "file":
        bad.write_text("not a directory\n")
    proc = subprocess.run(
        [sys.executable, "-m", "gocachemgr", "--local-dir", str(tmp_path / "l"), "watch", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert lines[0].startswith("gocachemgr: error: cannot watch") and str(bad) in lines[0]
