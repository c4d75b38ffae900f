"""GOCACHEPROG messages: what parse_request accepts, and what our replies look like to go."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gocachemgr.cacheprog import protocol
from gocachemgr.cacheprog.protocol import INT64_MAX, ProtocolError, Request, parse_request
from gocachemgr.store import ActionEntry
from tests.protocol_helpers import action, b64, go_request, parse_rfc3339, sha

AID = action(1)
OID = sha(b"body")


def line(**fields: object) -> bytes:
    return json.dumps(fields).encode()


# -- parse_request -----------------------------------------------------------


def test_go_framed_get_and_put_parse() -> None:
    get = go_request(7, "get", AID).split(b"\n")[0]
    assert parse_request(get) == Request(7, "get", AID.hex())
    put = go_request(8, "put", AID, body=b"body").split(b"\n")[0]
    assert parse_request(put) == Request(8, "put", AID.hex(), OID.hex(), 4)
    assert parse_request(line(ID=9, Command="close")) == Request(9, "close")


def test_body_size_zero_put_has_no_body_size() -> None:
    put = go_request(1, "put", AID, output_id=sha(b"")).split(b"\n")[0]
    assert b"BodySize" not in put
    assert parse_request(put) == Request(1, "put", AID.hex(), sha(b"").hex(), 0)


@pytest.mark.parametrize(
    "raw",
    [
        line(Command="get", ActionID=b64(AID)),  # no ID
        line(ID=None, Command="get"),
        line(ID="1", Command="get"),
        line(ID=1.0, Command="get"),
        line(ID=1.5, Command="get"),
        line(ID=True, Command="get"),
        line(ID=False, Command="close"),
        line(ID=[1], Command="get"),
        line(ID=-1, Command="get"),
        line(ID=2**63, Command="get"),
        line(ID=2**64 + 1, Command="get"),
        line(ID=1, Command="put", BodySize=-3),
        line(ID=1, Command="put", BodySize=True),
        line(ID=1, Command="put", BodySize="4"),
        line(ID=1, Command="put", BodySize=2**63),
        b'{"ID":1e3,"Command":"get"}',
        b'{"ID":NaN,"Command":"get"}',
        pytest.param(b'{"ID":' + b"9" * 5000 + b"}", id="int-beyond-str-limit"),
        b"not json",
        b'{"ID":1,"Command":"get"',
        b"[1,2,3]",
        b'"a string"',
        b"42",
        b"null",
        b"\xff\xfe{garbage",
        b'{"ID":1,"Command":"\xff\xfe"}',
        # Nesting deeper than Python's recursion limit (a regression: it escaped as
        # RecursionError and killed the server with a traceback).
        pytest.param(b"[" * 100_000, id="deep-array"),
        pytest.param(b'{"ID":1,"a":' * 50_000, id="deep-object"),
    ],
)
def test_unanswerable_requests_are_protocol_errors(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_request(raw)


def test_int64_bounds() -> None:
    assert parse_request(line(ID=INT64_MAX, Command="close")).id == INT64_MAX
    assert parse_request(line(ID=0, Command="close")).id == 0
    assert parse_request(line(ID=1, Command="put", BodySize=INT64_MAX,
                              ActionID=b64(AID), OutputID=b64(OID))).body_size == INT64_MAX


@pytest.mark.parametrize("command", ["get2", "GET", "", None, 5, ["get"], {"a": 1}, "delete"])
def test_unknown_command_is_an_answerable_error(command: object) -> None:
    request = parse_request(line(ID=4, Command=command, ActionID=b64(AID)))
    assert request.id == 4
    assert request.error is not None and "unknown command" in request.error


def test_missing_command_is_an_answerable_error() -> None:
    request = parse_request(line(ID=4))
    assert request.id == 4 and request.error is not None


def test_unknown_command_keeps_its_body_size() -> None:
    # The server must still read (and drop) the body to stay in step.
    request = parse_request(line(ID=4, Command="put2", BodySize=10))
    assert request.error is not None and request.body_size == 10


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("ActionID", None, "base64 string"),
        ("ActionID", 12, "base64 string"),
        ("ActionID", "not base64!", "not valid base64"),
        ("ActionID", b64(AID)[:-1], "not valid base64"),
        ("ActionID", b64(AID[:31]), "32 bytes"),
        ("ActionID", b64(AID + b"x"), "32 bytes"),
        ("ActionID", "", "32 bytes"),
        ("OutputID", None, "base64 string"),
        ("OutputID", "%%%", "not valid base64"),
        ("OutputID", b64(b"short"), "32 bytes"),
    ],
)
def test_bad_ids_are_answerable_errors(field: str, value: object, needle: str) -> None:
    fields: dict[str, object] = {"ID": 3, "Command": "put", "ActionID": b64(AID),
                                 "OutputID": b64(OID), "BodySize": 4}
    if value is None:
        del fields[field]
    else:
        fields[field] = value
    request = parse_request(line(**fields))
    assert request.id == 3 and request.body_size == 4
    assert request.error is not None and needle in request.error
    assert request.action_id is None and request.output_id is None


def test_get_needs_no_output_id_and_close_needs_no_action_id() -> None:
    assert parse_request(line(ID=1, Command="get", ActionID=b64(AID))).error is None
    assert parse_request(line(ID=1, Command="get")).error is not None
    assert parse_request(line(ID=1, Command="close")).error is None


def test_unknown_fields_are_ignored() -> None:
    request = parse_request(line(ID=1, Command="get", ActionID=b64(AID), Future="x"))
    assert request == Request(1, "get", AID.hex())


# -- responses ----------------------------------------------------------------

@pytest.mark.parametrize(
    ("time_ns", "text"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (1_500_000_000, "1970-01-01T00:00:01.5Z"),
        (1_700_000_000_123_456_789, "2023-11-14T22:13:20.123456789Z"),
        (1_700_000_000_000_000_100, "2023-11-14T22:13:20.0000001Z"),
        (-1, "1969-12-31T23:59:59.999999999Z"),
    ],
)
def test_time_format_matches_go(time_ns: int, text: str) -> None:
    assert protocol.format_time(time_ns) == text


@given(st.integers(min_value=-(2**63), max_value=INT64_MAX))
@settings(max_examples=300, deadline=None)
def test_time_round_trips_with_nanoseconds(time_ns: int) -> None:
    assert parse_rfc3339(protocol.format_time(time_ns)) == time_ns


@given(st.binary(min_size=32, max_size=32), st.integers(0, INT64_MAX),
       st.integers(0, 2**62), st.integers(0, INT64_MAX))
@settings(max_examples=100, deadline=None)
def test_hit_response_round_trips(output: bytes, size: int, time_ns: int, request_id: int) -> None:
    entry = ActionEntry(output.hex(), size, time_ns)
    raw = protocol.hit_response(request_id, entry, "/c/ab/x-d")
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1
    reply = json.loads(raw)
    assert reply["ID"] == request_id
    assert base64.b64decode(reply["OutputID"], validate=True) == output
    assert reply["Size"] == size
    assert parse_rfc3339(reply["Time"]) == time_ns
    assert reply["DiskPath"] == "/c/ab/x-d"
    assert "Miss" not in reply and "Err" not in reply


def test_simple_responses() -> None:
    assert json.loads(protocol.miss_response(3)) == {"ID": 3, "Miss": True}
    assert json.loads(protocol.close_response(INT64_MAX)) == {"ID": INT64_MAX}
    assert json.loads(protocol.put_response(4, "/g/ab/c-d")) == {"ID": 4, "DiskPath": "/g/ab/c-d"}
    err = protocol.error_response(5, 'bad "thing"\nwith a newline')
    assert err.count(b"\n") == 1  # one JSON value per line, whatever the message
    assert json.loads(err) == {"ID": 5, "Err": 'bad "thing"\nwith a newline'}


def test_hello_is_first_message_go_expects() -> None:
    assert protocol.HELLO.endswith(b"\n")
    assert json.loads(protocol.HELLO) == {"ID": 0, "KnownCommands": ["get", "put", "close"]}
