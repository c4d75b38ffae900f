"""Regression tests for bugs found in review, each named after what went wrong."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from gocachemgr.store import ActionEntry
from gocachemgr.store.atomic import AtomicFile
from gocachemgr.store.shared import SharedStore
from tests.helpers import Node, compile_actions
from tests.protocol_helpers import action, close_store, go_request, open_store, run_server, sha


def test_python_module_in_the_go_project_is_not_imported_by_the_helper(
    make_node: Callable[..., Node], sample: Path, tmp_path: Path
) -> None:
    """`python -m` put go's working directory first on sys.path: a json.py there broke builds."""
    (sample / "json.py").write_text("raise SystemExit('project json.py was imported')\n")
    node = make_node("a", None)
    node.go("build", "-o", str(tmp_path / "bin"), ".", cwd=sample)
    again = node.go("build", "-x", "-o", str(tmp_path / "bin2"), ".", cwd=sample)
    assert compile_actions(again.stderr) == []


def test_cacheprog_command_honours_shared_dir_flag(tmp_path: Path) -> None:
    """`gocachemgr --shared-dir X cacheprog` used to ignore the flag."""
    share = tmp_path / "share"
    share.mkdir()
    body = b"compiled package"
    stdin = go_request(1, "put", action(1), body=body) + go_request(2, "close")
    env = {
        **os.environ,
        "GOCACHEMGR_LOCAL_DIR": str(tmp_path / "local"),
        "GOCACHE": str(tmp_path / "gocache"),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "gocachemgr", "--shared-dir", str(share), "cacheprog"],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    output_id = sha(body).hex()
    assert (share / "objects" / output_id[:2] / output_id).read_bytes() == body


def test_symlink_planted_as_a_shard_dir_is_not_followed(tmp_path: Path) -> None:
    share = tmp_path / "share"
    share.mkdir()
    shared = SharedStore(share)
    shared.open()
    outside = tmp_path / "outside"
    outside.mkdir()
    body = b"secret outside the share"
    output_id = sha(body).hex()
    (outside / output_id).write_bytes(body)
    (share / "objects" / output_id[:2]).symlink_to(outside)
    entry = ActionEntry(output_id, len(body), 1)
    with AtomicFile(tmp_path) as dest:
        try:
            shared.read_object_into(action(1).hex(), entry, dest)
        except OSError as exc:
            assert exc.errno is not None
        else:
            raise AssertionError("a read through a planted symlink must fail")
        assert dest.size == 0
    source = tmp_path / "body"
    source.write_bytes(body)
    try:
        shared.put_object(output_id, len(body), str(source))
    except OSError:
        pass
    else:
        raise AssertionError("a write through a planted symlink must fail")


def test_record_pointing_to_missing_object_is_quarantined_once(tmp_path: Path) -> None:
    """A dangling record used to cost a retry and an error on every lookup, forever."""
    share = tmp_path / "share"
    share.mkdir()
    shared = SharedStore(share)
    shared.open()
    output_id = sha(b"gone").hex()
    shared.put_action(action(1).hex(), ActionEntry(output_id, 4, 1))

    store = open_store(tmp_path / "node", SharedStore(share))
    try:
        assert store.fetch_shared(action(1).hex()) is None
        assert store.counters.snapshot().get("corrupt") == 1
        assert not shared.action_path(action(1).hex()).exists()
        assert [p.name.startswith("actions-") for p in (share / "quarantine").iterdir()] == [True]
        assert store.fetch_shared(action(1).hex()) is None  # now a plain miss
        assert store.counters.snapshot().get("shared_errors", 0) == 0
    finally:
        close_store(store)


class HungShare(SharedStore):
    """Fault injection (a fake): a share whose start-up check hangs like a dead hard mount."""

    def open(self) -> None:
        time.sleep(3)


def test_hung_share_start_up_does_not_delay_local_hits(tmp_path: Path) -> None:
    body = b"a local body"
    share = tmp_path / "share"
    share.mkdir()
    store = open_store(tmp_path / "node")
    run_server(store, [go_request(1, "put", action(1), body=body)])
    close_store(store)

    store = open_store(tmp_path / "node", HungShare(share))
    try:
        started = time.monotonic()
        session = run_server(
            store,
            [
                go_request(1, "get", action(1)),
                go_request(2, "get", action(2)),
                go_request(3, "close"),
            ],
            shared_timeout=0.5,
        )
        elapsed = time.monotonic() - started
        replies = session.by_id()
        assert replies[1]["Size"] == len(body)
        assert replies[2].get("Miss") is True
        assert elapsed < 2.5, "the hung share must cost at most one shared_timeout"
        assert store.shared_readable is False
        assert "did not answer" in (store.shared_problem or "")
    finally:
        store.close()
        store.local.index.close()
