"""GOCACHEPROG messages (GOROOT/src/cmd/go/internal/cacheprog/cacheprog.go).

go writes each request as a JSON object, a newline and a blank line; a put
with ``BodySize > 0`` is followed by its body as a base64 JSON string on the
next line. ``[]byte`` fields are base64 in JSON. We answer by ID, in any order.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from gocachemgr.store import ActionEntry

INT64_MAX = 2**63 - 1
COMMANDS = ("get", "put", "close")
HELLO = json.dumps({"ID": 0, "KnownCommands": list(COMMANDS)}).encode() + b"\n"


class ProtocolError(Exception):
    """Input we cannot answer at all (no usable ID, or the stream lost its framing)."""


@dataclass(frozen=True)
class Request:
    id: int
    command: str
    action_id: str | None = None  # hex
    output_id: str | None = None  # hex
    body_size: int = 0
    error: str | None = None  # set when the request has an ID but cannot be served


def _hex_id(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{field} must be a base64 string")
    try:
        raw = base64.b64decode(value, validate=True)
    except binascii.Error:
        raise ValueError(f"{field} is not valid base64") from None
    if len(raw) != 32:
        raise ValueError(f"{field} must be 32 bytes, got {len(raw)}")
    return raw.hex()


def _int_field(data: dict[str, object], field: str) -> int:
    value = data.get(field, 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= INT64_MAX:
        raise ProtocolError(f"{field} must be an integer between 0 and 2^63-1, got {value!r}")
    return value


def parse_request(line: bytes) -> Request:
    """Parse one request line; ProtocolError if it cannot be answered by ID."""
    try:
        data = json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        # RecursionError: nesting deeper than Python's limit ("[[[[..."), fits in one line.
        raise ProtocolError(f"request is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"request is not a JSON object: {line[:80]!r}")
    request_id = _int_field(data, "ID") if "ID" in data else None
    if request_id is None:
        raise ProtocolError("request has no ID")
    body_size = _int_field(data, "BodySize")
    command = data.get("Command")
    try:
        if command not in COMMANDS:
            raise ValueError(f"unknown command {command!r}; gocachemgr knows {', '.join(COMMANDS)}")
        action_id = output_id = None
        if command in ("get", "put"):
            action_id = _hex_id(data.get("ActionID"), "ActionID")
        if command == "put":
            output_id = _hex_id(data.get("OutputID"), "OutputID")
    except ValueError as exc:
        return Request(request_id, str(command), body_size=body_size, error=str(exc))
    return Request(request_id, str(command), action_id, output_id, body_size)


_STAMPS: dict[int, str] = {}


def format_time(time_ns: int) -> str:
    """RFC 3339 with nanoseconds, as Go's time.Time marshals (and parses) it.

    Every hit needs one and strftime showed up in profiles; entries put in the
    same second share the formatted prefix.
    """
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    stamp = _STAMPS.get(seconds)
    if stamp is None:
        if len(_STAMPS) > 4096:
            _STAMPS.clear()
        stamp = _STAMPS[seconds] = datetime.fromtimestamp(seconds, UTC).strftime(
            "%Y-%m-%dT%H:%M:%S"
        )
    fraction = f".{nanos:09d}".rstrip("0") if nanos else ""
    return f"{stamp}{fraction}Z"


def _encode(message: dict[str, object]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def error_response(request_id: int, message: str) -> bytes:
    return _encode({"ID": request_id, "Err": message})


def miss_response(request_id: int) -> bytes:
    return _encode({"ID": request_id, "Miss": True})


def close_response(request_id: int) -> bytes:
    return _encode({"ID": request_id})


def put_response(request_id: int, disk_path: str) -> bytes:
    return _encode({"ID": request_id, "DiskPath": disk_path})


def hit_response(request_id: int, entry: ActionEntry, disk_path: str) -> bytes:
    return _encode(
        {
            "ID": request_id,
            "OutputID": base64.b64encode(bytes.fromhex(entry.output_id)).decode(),
            "Size": entry.size,
            "Time": format_time(entry.time_ns),
            "DiskPath": disk_path,
        }
    )
