"""Stores for go's action cache: a local tier, a shared tier, and both combined.

The contract every tier keeps (see ``docs/architecture.md``):

* an action id maps to an ``ActionEntry`` (output id, size, put time);
* the body of an output is content-addressed: ``sha256(body) == output_id``;
* a miss is a value (``None``), damage is a miss with a counted reason, and
  only the unexpected raises.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

_HEX64 = re.compile(r"[0-9a-f]{64}")
_PACKED = struct.Struct(">32sQq")


def is_hex_id(value: str) -> bool:
    """True for a 64-digit lower-case hex id: the only names the stores build paths from."""
    return bool(_HEX64.fullmatch(value))


@dataclass(frozen=True)
class ActionEntry:
    """What go stored under an action id: which output, how big, and when."""

    output_id: str  # 64 lower-case hex digits: sha256 of the body
    size: int
    time_ns: int  # original put time, Unix nanoseconds (go uses it for -testcache)
    # What producing it cost (go's miss to its put, ms; 0 = unknown): summed on
    # hits as "time saved". Not part of the identity, and kept outside ``pack``.
    cost_ms: int = field(default=0, compare=False)

    def pack(self) -> bytes:
        return _PACKED.pack(bytes.fromhex(self.output_id), self.size, self.time_ns)

    @classmethod
    def unpack(cls, raw: bytes) -> ActionEntry:
        output, size, time_ns = _PACKED.unpack(raw)
        return cls(output.hex(), size, time_ns)


@dataclass(frozen=True)
class LocalHit:
    """An entry whose body is a complete local file at ``disk_path``."""

    entry: ActionEntry
    disk_path: str
