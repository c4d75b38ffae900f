"""The cacheprog Server in-process, over real stores (lmdb index, local files, shared dir)."""

from __future__ import annotations

import asyncio
import base64
import errno
import hashlib
import os
import threading
import time
from pathlib import Path

import lmdb
import pytest

import gocachemgr.index
from gocachemgr.store import ActionEntry
from gocachemgr.store.shared import SharedStore
from gocachemgr.store.tiered import TieredStore
from tests.protocol_helpers import (
    Live,
    action,
    assert_objects_sound,
    close_store,
    fd_path,
    go_request,
    objects,
    open_store,
    parse_rfc3339,
    run_server,
    sha,
    temp_files,
)


class SlowShared(SharedStore):
    """Fault-injection fake: a real SharedStore whose record reads wait on ``gate``.

    Stands in for an NFS server that is slow to answer; everything else (layout,
    verification, quarantine) is the real SharedStore on a real directory.
    """

    def __init__(self, root: Path, gate: threading.Event) -> None:
        super().__init__(root)
        self.gate = gate
        self.reading = threading.Event()  # set once a read is waiting on the gate

    def get_action(self, action_id: str) -> ActionEntry | None:
        self.reading.set()
        self.gate.wait(30)
        return super().get_action(action_id)


def publish(shared_root: Path, action_id: bytes, body: bytes, time_ns: int, tmp: Path) -> None:
    """Put one entry on the share the way another node's upload would."""
    shared = SharedStore(shared_root)
    shared.open()
    src = tmp / f"src-{action_id.hex()[:8]}"
    src.write_bytes(body)
    entry = ActionEntry(sha(body).hex(), len(body), time_ns)
    shared.put_object(entry.output_id, entry.size, str(src))
    shared.put_action(action_id.hex(), entry)


def gocache(store: TieredStore) -> Path:
    return Path(store.local.gocache_dir)


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = open_store(tmp_path / "node")
    yield s
    close_store(s)


def test_put_get_close_round_trip(store: TieredStore) -> None:
    body = os.urandom(5000) + b"\n\"\\"
    root = gocache(store)

    async def main() -> None:
        async with Live(store) as live:
            before = time.time_ns()
            put = await live.ask(go_request(1, "put", action(1), body=body), 1)
            after = time.time_ns()
            assert set(put) == {"ID", "DiskPath"}
            path = str(put["DiskPath"])
            assert os.path.isabs(path) and path.startswith(str(root) + os.sep)
            assert Path(path).read_bytes() == body
            assert Path(path).name == sha(body).hex() + "-d"  # go's own layout, no extension

            get = await live.ask(go_request(2, "get", action(1)), 2)
            assert get["DiskPath"] == path
            assert base64.b64decode(str(get["OutputID"])) == sha(body)
            assert get["Size"] == len(body)
            assert before <= parse_rfc3339(str(get["Time"])) <= after
            assert "Miss" not in get and "Err" not in get

            assert await live.finish(close_id=3) == 0
            assert live.session.by_id()[3] == {"ID": 3}
            assert len(live.session.sent) == 3

    asyncio.run(main())
    assert_objects_sound(root)


def test_get_miss(store: TieredStore) -> None:
    session = run_server(store, [go_request(5, "get", action(9)), go_request(6, "close")])
    assert session.status == 0
    assert session.by_id() == {5: {"ID": 5, "Miss": True}, 6: {"ID": 6}}


def test_vanished_local_body_is_a_miss(store: TieredStore) -> None:
    """`go clean -cache` removes the bodies behind the index's back."""
    first = run_server(store, [go_request(1, "put", action(1), body=b"gone soon")])
    os.unlink(str(first.by_id()[1]["DiskPath"]))
    second = run_server(store, [go_request(2, "get", action(1))])
    assert second.by_id() == {2: {"ID": 2, "Miss": True}}


def test_eof_acts_as_close_counters_and_uploads_are_flushed(tmp_path: Path) -> None:
    shared_root = tmp_path / "share"
    shared_root.mkdir()
    store = open_store(tmp_path / "node", SharedStore(shared_root))
    try:
        body = b"compiled package"
        session = run_server(store, [
            go_request(1, "get", action(1)),
            go_request(2, "put", action(2), body=body),
        ])  # no close: `go list` just closes stdin
        assert session.status == 0
        assert session.by_id()[1] == {"ID": 1, "Miss": True}
        assert "DiskPath" in session.by_id()[2]
        counters = store.local.index.counters()
        assert counters["gets"] == 1 and counters["misses"] == 1
        assert counters["puts"] == 1 and counters["put_bytes"] == len(body)
        assert counters["uploads_done"] == 1
        # The write-behind upload finished before serve returned: object, then record.
        assert store.local.index.count_pending() == 0
        shared = SharedStore(shared_root)
        entry = shared.get_action(action(2).hex())
        assert entry is not None and entry.output_id == sha(body).hex()
        assert shared.object_path(entry.output_id).read_bytes() == body
        assert shared.check() == []
    finally:
        close_store(store)


def test_put_time_is_carried_through_the_shared_tier(tmp_path: Path) -> None:
    shared_root = tmp_path / "share"
    shared_root.mkdir()
    a = open_store(tmp_path / "a", SharedStore(shared_root))
    b = open_store(tmp_path / "b", SharedStore(shared_root))
    try:
        body = os.urandom(3000)
        run_server(a, [go_request(1, "put", action(7), body=body), go_request(2, "close")])
        put_time = a.local.index.get_action(action(7).hex()).time_ns  # type: ignore[union-attr]

        session = run_server(b, [go_request(1, "get", action(7)), go_request(2, "close")])
        hit = session.by_id()[1]
        assert parse_rfc3339(str(hit["Time"])) == put_time
        assert Path(str(hit["DiskPath"])).read_bytes() == body
        assert str(hit["DiskPath"]).startswith(str(gocache(b)) + os.sep)
        assert b.local.index.counters()["hits_shared"] == 1
        # Now local on b: the next get does not need the share.
        session = run_server(b, [go_request(3, "get", action(7))])
        assert session.by_id()[3]["DiskPath"] == hit["DiskPath"]
        assert b.local.index.counters()["hits_local"] == 1
    finally:
        close_store(a)
        close_store(b)


def test_local_hit_is_answered_while_a_slow_shared_fetch_is_pending(tmp_path: Path) -> None:
    shared_root = tmp_path / "share"
    shared_root.mkdir()
    remote_body = b"only on the share"
    publish(shared_root, action(2), remote_body, 123_456_789, tmp_path)
    gate = threading.Event()
    slow = SlowShared(shared_root, gate)
    store = open_store(tmp_path / "node", slow)
    local_body = b"already local"

    async def main() -> None:
        async with Live(store) as live:
            await live.ask(go_request(1, "put", action(1), body=local_body), 1)
            live.write(go_request(2, "get", action(2)))  # goes to the (slow) share
            assert await asyncio.to_thread(slow.reading.wait, 10)
            local = await live.ask(go_request(3, "get", action(1)), 3)
            assert Path(str(local["DiskPath"])).read_bytes() == local_body
            assert not live.answered(2), "the local hit must not wait for the share"
            gate.set()
            remote = await live.reply(2)
            assert Path(str(remote["DiskPath"])).read_bytes() == remote_body
            assert parse_rfc3339(str(remote["Time"])) == 123_456_789
            assert await live.finish(close_id=4) == 0
            assert [r["ID"] for r in live.session.replies] == [1, 3, 2, 4]

    try:
        asyncio.run(main())
    finally:
        gate.set()
        close_store(store)


def test_shared_timeout_turns_a_hung_share_into_a_miss(tmp_path: Path) -> None:
    shared_root = tmp_path / "share"
    shared_root.mkdir()
    publish(shared_root, action(2), b"unreachable", 1, tmp_path)
    gate = threading.Event()
    store = open_store(tmp_path / "node", SlowShared(shared_root, gate))
    warnings: list[str] = []
    store.reporter._write = warnings.append
    try:
        started = time.monotonic()
        session = run_server(store, [go_request(1, "get", action(2)), go_request(2, "close")],
                             shared_timeout=0.3)
        assert time.monotonic() - started < 5
        assert session.by_id()[1] == {"ID": 1, "Miss": True}
        assert not store.shared_readable  # dropped for the rest of the run
        assert len(warnings) == 1 and "shared_timeout" in warnings[0]
        assert store.local.index.counters()["degraded_runs"] == 1
    finally:
        gate.set()
        close_store(store)


def test_put_with_wrong_output_id_is_err_and_stores_nothing(store: TieredStore) -> None:
    body = b"the real body"
    session = run_server(store, [
        go_request(1, "put", action(1), body=body, output_id=sha(b"something else")),
        go_request(2, "close"),
    ])
    assert session.status == 0
    reply = session.by_id()[1]
    assert set(reply) == {"ID", "Err"} and "sha256" in str(reply["Err"])
    assert store.local.index.get_action(action(1).hex()) is None
    assert objects(gocache(store)) == {}
    assert temp_files(gocache(store)) == []


def test_put_whose_body_disagrees_with_body_size_is_err(store: TieredStore) -> None:
    body = b"twelve bytes"
    session = run_server(store, [
        go_request(1, "put", action(1), body=body, body_size=len(body) + 1),
        go_request(2, "get", action(1)),
    ])
    assert "BodySize" in str(session.by_id()[1]["Err"])
    assert session.by_id()[2] == {"ID": 2, "Miss": True}
    assert objects(gocache(store)) == {} and temp_files(gocache(store)) == []


def test_body_size_zero_put_makes_an_empty_object(store: TieredStore) -> None:
    empty = go_request(1, "put", action(1), output_id=sha(b""))
    assert b"BodySize" not in empty and b'"\n' not in empty  # go sends no body line at all
    first = run_server(store, [empty])
    path = Path(str(first.by_id()[1]["DiskPath"]))
    assert path.read_bytes() == b"" and path.name == sha(b"").hex() + "-d"
    second = run_server(store, [go_request(2, "get", action(1))])
    hit = second.by_id()[2]
    assert hit["DiskPath"] == str(path) and hit["Size"] == 0
    assert base64.b64decode(str(hit["OutputID"])) == sha(b"")


def test_bad_body_gets_err_and_the_stream_stays_in_step(store: TieredStore) -> None:
    bad_b64 = go_request(1, "put", action(1), body=b"abcdef")
    bad_b64 = bad_b64.replace(base64.b64encode(b"abcdef"), b"YWJj*GVm")
    # A put that says BodySize 3 but whose body line never comes: the next request follows.
    missing = go_request(2, "put", action(2), body=b"xyz").split(b"\n\n")[0] + b"\n\n"
    session = run_server(store, [
        bad_b64,
        missing,
        go_request(3, "put", action(3), body=b"fine"),
        go_request(4, "get", action(1)),
        go_request(5, "close"),
    ])
    replies = session.by_id()
    assert "base64" in str(replies[1]["Err"])
    assert "base64 JSON string" in str(replies[2]["Err"])
    assert Path(str(replies[3]["DiskPath"])).read_bytes() == b"fine"
    assert replies[4] == {"ID": 4, "Miss": True}
    assert replies[5] == {"ID": 5}
    assert_objects_sound(gocache(store))


def test_unknown_command_and_bad_ids_get_err_replies(store: TieredStore) -> None:
    session = run_server(store, [
        b'{"ID":1,"Command":"get2"}\n\n',
        b'{"ID":2,"Command":"get","ActionID":"AAAA"}\n\n',
        b'{"ID":3,"Command":"put2","BodySize":3}\n\n"YWJj"\n',  # body read and dropped
        go_request(4, "get", action(4)),
    ])
    assert session.status == 0
    replies = session.by_id()
    assert "unknown command" in str(replies[1]["Err"])
    assert "32 bytes" in str(replies[2]["Err"])
    assert "unknown command" in str(replies[3]["Err"])
    assert replies[4] == {"ID": 4, "Miss": True}


def test_unanswerable_input_stops_with_one_log_line_after_answering(store: TieredStore) -> None:
    session = run_server(store, [
        go_request(1, "put", action(1), body=b"kept"),
        b"this is not json\n",
        go_request(2, "get", action(1)),  # never read
    ])
    assert session.status == 2
    assert list(session.by_id()) == [1]  # the request before the damage is still answered
    assert len(session.log) == 1 and session.log[0].count("\n") == 1
    assert "malformed request" in session.log[0]
    assert Path(str(session.by_id()[1]["DiskPath"])).read_bytes() == b"kept"


def test_many_concurrent_requests_are_each_answered_once(store: TieredStore) -> None:
    bodies = {i: os.urandom(i * 7) for i in range(1, 151)}
    data = b"".join(go_request(i, "put", action(i), body=b) for i, b in bodies.items())
    data += b"".join(go_request(1000 + i, "get", action(i + 10_000)) for i in range(150))
    session = run_server(store, [data[i : i + 999] for i in range(0, len(data), 999)])
    replies = session.by_id()
    assert len(replies) == len(session.sent) == 300
    for i, body in bodies.items():
        assert Path(str(replies[i]["DiskPath"])).read_bytes() == body
    assert all(replies[1000 + i] == {"ID": 1000 + i, "Miss": True} for i in range(150))
    assert_objects_sound(gocache(store))


def test_resumes_uploads_left_pending_by_an_earlier_run(tmp_path: Path) -> None:
    shared_root = tmp_path / "share"
    shared_root.mkdir()
    body = b"left behind"
    offline = open_store(tmp_path / "node")  # no shared tier configured: nothing uploads
    run_server(offline, [go_request(1, "put", action(1), body=body)])
    entry = offline.local.index.get_action(action(1).hex())
    assert entry is not None
    offline.local.index.put_action(action(1).hex(), entry, pending=True)  # as a failed upload
    close_store(offline)

    store = open_store(tmp_path / "node", SharedStore(shared_root))
    try:
        assert store.local.index.count_pending() == 1
        session = run_server(store, [go_request(9, "close")])
        assert session.by_id() == {9: {"ID": 9}}
        # The backlog trickles up in the background (close does not wait for it).
        deadline = time.monotonic() + 10
        while store.local.index.count_pending() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert store.local.index.count_pending() == 0
        assert SharedStore(shared_root).get_action(action(1).hex()) == entry
    finally:
        close_store(store)


# -- local write failures: the put is refused, never left unanswered -----------


def test_full_index_makes_put_an_err_reply_not_a_hang(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: an lmdb error in put (not an OSError) used to leave the request unanswered."""
    monkeypatch.setattr(gocachemgr.index, "MAP_SIZE", 1 << 16)
    store = open_store(tmp_path / "node")
    try:
        filler = ActionEntry("0" * 64, 1, 1)
        with pytest.raises(lmdb.MapFullError):  # fill until lmdb says full
            for i in range(100_000):
                store.local.index.put_action(hashlib.sha256(b"%d" % i).hexdigest(), filler,
                                             pending=False)
        session = run_server(store, [
            go_request(1, "put", action(1), body=b"no room for the record"),
            go_request(2, "get", action(1)),
            go_request(3, "close"),
        ])
        assert session.status == 0
        replies = session.by_id()
        assert "Err" in replies[1], replies[1]
        assert replies[2] == {"ID": 2, "Miss": True}
        assert replies[3] == {"ID": 3}
        assert temp_files(gocache(store)) == []
    finally:
        close_store(store)


def test_enospc_while_writing_a_body_is_err_and_leaves_no_temp(
    store: TieredStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection: os.write fails with ENOSPC, but only for the cache's temp files."""
    real_write = os.write

    def full_disk(fd: int, data: bytes) -> int:
        if "/.tmp-" in fd_path(fd):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full_disk)
    session = run_server(store, [
        go_request(1, "put", action(1), body=os.urandom(200_000)),
        go_request(2, "put", action(2), body=b"also no room"),
        go_request(3, "get", action(1)),
        go_request(4, "close"),
    ])
    monkeypatch.undo()
    assert session.status == 0
    replies = session.by_id()
    assert "No space left" in str(replies[1]["Err"]) and "Err" in replies[2]
    assert replies[3] == {"ID": 3, "Miss": True}
    assert temp_files(gocache(store)) == [] and objects(gocache(store)) == {}
