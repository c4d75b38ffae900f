"""Malformed GOCACHEPROG input: the server answers what it can, stops cleanly, never crashes.

The in-process cases drive the real Server over real stores (fast, many
examples); the subprocess cases run ``python -m gocachemgr.cacheprog`` as go
does and check what go would see: the hello, replies, exit status, stderr.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gocachemgr.cacheprog.protocol import INT64_MAX
from gocachemgr.store.shared import SharedStore
from tests.protocol_helpers import (
    action,
    assert_objects_sound,
    b64,
    close_store,
    go_request,
    objects,
    open_store,
    run_server,
    sha,
    temp_files,
)

# -- strategies -----------------------------------------------------------------

IDS = st.one_of(st.integers(0, 40), st.just(INT64_MAX))  # small: duplicates are common
BAD_IDS = st.sampled_from([2**63, 2**64, -1, -(2**63), 10**30, "7", 1.5, True, None])
ACTIONS = st.integers(0, 6).map(action)
BODIES = st.binary(max_size=400)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(["ID", "Command", "ActionID", "OutputID", "BodySize", "x"]),
                      inner, max_size=5),
    max_leaves=12,
)


def _put(request_id: int, action_id: bytes, body: bytes) -> bytes:
    return go_request(request_id, "put", action_id, body=body)


def _wrong_output(request_id: int, action_id: bytes, body: bytes) -> bytes:
    return go_request(request_id, "put", action_id, body=body, output_id=sha(body + b"!"))


def _size_mismatch(request_id: int, action_id: bytes, body: bytes, delta: int) -> bytes:
    return go_request(request_id, "put", action_id, body=body or b"x",
                      body_size=max(1, len(body or b"x") + delta))


def _truncated(request_id: int, action_id: bytes, body: bytes, fraction: float) -> bytes:
    full = _put(request_id, action_id, body)
    return full[: int(len(full) * fraction)]


def _bad_base64(request_id: int, action_id: bytes, body: bytes, junk: str) -> bytes:
    head = go_request(request_id, "put", action_id, body=body or b"x").split(b"\n\n")[0]
    return head + b"\n\n" + json.dumps(junk).encode() + b"\n"


def _raw(fields: dict[str, object]) -> bytes:
    return json.dumps(fields).encode() + b"\n\n"


# Requests that get an answer (or are skipped) without ending the conversation.
ANSWERABLE = st.one_of(
    st.builds(lambda i, a: go_request(i, "get", a), IDS, ACTIONS),
    st.builds(_put, IDS, ACTIONS, BODIES),
    st.builds(lambda i, a: go_request(i, "put", a, output_id=sha(b"")), IDS, ACTIONS),
    st.builds(_wrong_output, IDS, ACTIONS, BODIES),
    st.builds(_size_mismatch, IDS, ACTIONS, BODIES, st.sampled_from([-3, -1, 1, 2, 5])),
    st.builds(_bad_base64, IDS, ACTIONS, BODIES,
              st.text(st.characters(blacklist_characters='"'), max_size=30)),
    st.builds(lambda i, c: _raw({"ID": i, "Command": c, "ActionID": base64.b64encode(action(1))
                                 .decode()}), IDS, st.text(max_size=8)),
    st.builds(lambda i, a: _raw({"ID": i, "Command": "get", "ActionID": a}), IDS,
              st.text(max_size=50)),
    st.builds(lambda i: _raw({"ID": i, "Command": "put2", "BodySize": 4}) + b'"YWJj"\n', IDS),
    st.sampled_from([b"\n", b"\n\n", b"   \r\n"]),
)
# Input that may well end it: damage we cannot answer by ID, cut-off bodies, a close.
DAMAGE = st.one_of(
    st.builds(_truncated, IDS, ACTIONS, BODIES, st.floats(0, 1)),
    st.builds(_bad_base64, IDS, ACTIONS, BODIES, st.text(max_size=30)),  # quotes end it early
    st.builds(lambda i, a, b: go_request(i, "put", a, body=b, body_size=0), IDS, ACTIONS,
              BODIES),  # a body line after a put that declared none
    st.builds(lambda v: json.dumps(v).encode() + b"\n", JSON),
    st.binary(max_size=80),
    st.sampled_from([b'""\n', b'"', b"{", b"[" * 3000 + b"\n", b"\x00\xff\n"]),
    st.builds(lambda i, a: _raw({"ID": i, "Command": "get", "ActionID": b64(a)}), BAD_IDS,
              ACTIONS),
    st.builds(lambda i: go_request(i, "close"), IDS),
)
# About one segment in twelve is damage, so most streams get some way before it.
SEGMENT = st.integers(0, 11).flatmap(lambda k: DAMAGE if k == 0 else ANSWERABLE)
STREAMS = st.lists(SEGMENT, min_size=3, max_size=24)
PIECES = st.lists(st.integers(1, 300), min_size=1, max_size=20)


def candidate_ids(data: bytes) -> set[int]:
    """Every ID a request the server could have parsed from ``data`` might carry.

    Requests are whole lines, except that a body string may end mid-line: so
    try each line from its start and from just after each quote in it.
    """
    ids: set[int] = set()
    for line in data.split(b"\n"):
        starts = {0} | {i + 1 for i, c in enumerate(line) if c == ord('"')}
        for start in starts:
            try:
                value = json.loads(line[start:])
            except (ValueError, RecursionError):
                continue
            if isinstance(value, dict) and type(value.get("ID")) is int:
                ids.add(value["ID"])
    return ids


def cut(data: bytes, sizes: list[int]) -> list[bytes]:
    pieces, i, k = [], 0, 0
    while i < len(data):
        n = sizes[k % len(sizes)]
        pieces.append(data[i : i + n])
        i, k = i + n, k + 1
    return pieces


@given(segments=STREAMS, sizes=PIECES, with_shared=st.booleans())
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_fuzzed_stream_never_crashes_and_leaves_a_sound_cache(
    segments: list[bytes], sizes: list[int], with_shared: bool
) -> None:
    data = b"".join(segments)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shared = None
        if with_shared:
            (root / "share").mkdir()
            shared = SharedStore(root / "share")
        store = open_store(root / "node", shared)
        try:
            session = run_server(store, cut(data, sizes), timeout=20)  # a hang fails here
        finally:
            close_store(store)
        gocache = root / "node" / "gocache"

        assert session.status in (0, 2)
        event(f"status {session.status}")
        event(f"replies: {min(len(session.sent), 5)}{'+' if len(session.sent) >= 5 else ''}")
        allowed = candidate_ids(data)
        for message in session.sent:
            assert message.endswith(b"\n") and message.count(b"\n") == 1
            reply = json.loads(message)
            assert isinstance(reply, dict)
            assert type(reply["ID"]) is int and reply["ID"] in allowed, (reply, allowed)
            assert 0 <= reply["ID"] <= INT64_MAX
            if "DiskPath" in reply:
                path = str(reply["DiskPath"])
                assert path.startswith(str(gocache) + os.sep) and os.path.isfile(path)
            if "OutputID" in reply:
                output = base64.b64decode(str(reply["OutputID"]), validate=True)
                assert Path(str(reply["DiskPath"])).name == output.hex() + "-d"
        if session.status == 2:
            assert len(session.log) == 1 and "malformed request" in session.log[0]
        else:
            assert session.log == []
        assert_objects_sound(gocache)
        if with_shared:
            assert temp_files(root / "share") == []


@given(requests=st.lists(st.tuples(st.booleans(), st.integers(0, 8), BODIES), max_size=25),
       sizes=PIECES)
@settings(max_examples=40, deadline=None)
def test_valid_streams_in_any_pieces_get_exactly_one_reply_each(
    requests: list[tuple[bool, int, bytes]], sizes: list[int]
) -> None:
    data = b"".join(
        _put(i + 1, action(n), body) if is_put else go_request(i + 1, "get", action(n))
        for i, (is_put, n, body) in enumerate(requests)
    )
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp))
        try:
            session = run_server(store, cut(data, sizes))
        finally:
            close_store(store)
        assert session.status == 0 and session.log == []
        replies = session.by_id()  # asserts no ID is answered twice
        assert sorted(replies) == list(range(1, len(requests) + 1))
        for i, (is_put, _, body) in enumerate(requests):
            reply = replies[i + 1]
            if is_put:
                assert Path(str(reply["DiskPath"])).read_bytes() == body
            else:
                assert "Err" not in reply
        assert len(objects(Path(tmp) / "gocache")) == len({b for p, _, b in requests if p})


# -- the real entry point, as go starts it ---------------------------------------


def cacheprog(tmp_path: Path, stdin: bytes | Path) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "GOCACHEMGR_LOCAL_DIR": str(tmp_path / "local"),
           "GOCACHE": str(tmp_path / "gocache")}
    env.pop("GOCACHEMGR_SHARED_DIR", None)
    command = [sys.executable, "-m", "gocachemgr.cacheprog"]
    if isinstance(stdin, Path):
        with stdin.open("rb") as f:
            return subprocess.run(command, stdin=f, capture_output=True, env=env, timeout=60)
    return subprocess.run(command, input=stdin, capture_output=True, env=env, timeout=60)


def stdout_messages(proc: subprocess.CompletedProcess[bytes]) -> list[dict[str, object]]:
    return [json.loads(line) for line in proc.stdout.splitlines()]


HELLO = {"ID": 0, "KnownCommands": ["get", "put", "close"]}


def test_subprocess_hello_then_get_and_close(tmp_path: Path) -> None:
    proc = cacheprog(tmp_path, go_request(1, "get", action(1)) + go_request(2, "close"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == json.dumps(HELLO).encode()
    assert stdout_messages(proc) == [HELLO, {"ID": 1, "Miss": True}, {"ID": 2}]
    assert proc.stderr == b""


def test_subprocess_put_survives_into_the_next_process(tmp_path: Path) -> None:
    body = os.urandom(10_000)
    first = cacheprog(tmp_path, _put(1, action(3), body))  # EOF, no close: like `go list`
    assert first.returncode == 0, first.stderr
    path = stdout_messages(first)[1]["DiskPath"]
    assert str(path).startswith(str(tmp_path / "gocache") + os.sep)

    second = cacheprog(tmp_path, go_request(1, "get", action(3)) + go_request(2, "close"))
    assert second.returncode == 0, second.stderr
    hit = stdout_messages(second)[1]
    assert hit["DiskPath"] == path and Path(str(path)).read_bytes() == body
    assert base64.b64decode(str(hit["OutputID"])) == sha(body)


def test_subprocess_reads_stdin_from_a_regular_file(tmp_path: Path) -> None:
    requests = tmp_path / "requests"
    requests.write_bytes(go_request(1, "get", action(1)) + go_request(2, "close"))
    proc = cacheprog(tmp_path, requests)
    assert proc.returncode == 0, proc.stderr
    assert stdout_messages(proc) == [HELLO, {"ID": 1, "Miss": True}, {"ID": 2}]


@pytest.mark.parametrize(
    "stdin",
    [
        pytest.param(b"hello there\n", id="not-json"),
        pytest.param(b'{"Command":"get"}\n\n', id="no-id"),
        pytest.param(b'{"ID":-1,"Command":"get"}\n\n', id="negative-id"),
        pytest.param(b'{"ID":9223372036854775808,"Command":"close"}\n\n', id="id-over-int64"),
        pytest.param(b"[" * 200_000 + b"\n", id="deep-nesting"),
        pytest.param(b"x" * (3 << 20), id="over-long-line"),
        pytest.param(b"\xff\xfe\x00garbage\n", id="binary"),
        pytest.param(go_request(1, "get", action(1)) + b"}{\n", id="after-a-good-request"),
    ],
)
def test_subprocess_malformed_input_is_one_stderr_line_and_exit_2(
    tmp_path: Path, stdin: bytes
) -> None:
    proc = cacheprog(tmp_path, stdin)
    assert proc.returncode == 2
    assert b"Traceback" not in proc.stderr and b"Traceback" not in proc.stdout
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert b"malformed request" in proc.stderr
    messages = stdout_messages(proc)
    assert messages[0] == HELLO
    if b'"ActionID"' in stdin:
        assert messages[1:] == [{"ID": 1, "Miss": True}]  # answered before the damage
    else:
        assert messages[1:] == []
    assert temp_files(tmp_path / "gocache") == []  # (rglob of a missing dir is empty too)
