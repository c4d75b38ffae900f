"""The content-key hash: xxh3-128 over a versioned, length-prefixed encoding.

Length prefixes make the encoding unambiguous ("ab"+"c" never equals
"a"+"bc"); the version string changes whenever the meaning of a key changes,
so keys from an older gocachemgr can never be mistaken for current ones.
"""

from __future__ import annotations

import os
import struct

import xxhash

KEY_VERSION = b"gocachemgr-content-key-1"
CHUNK = 1 << 20
_LEN = struct.Struct(">Q")


class KeyHasher:
    """Accumulates named fields; remembers a per-field digest for ``key --explain``."""

    def __init__(self, domain: str, *, explain: bool = False) -> None:
        self._hash = xxhash.xxh3_128()
        self._explain = explain
        self.fields: list[tuple[str, str]] = []
        self.add("version", KEY_VERSION)
        self.add("domain", domain)

    def add(self, name: str, value: bytes | str) -> None:
        data = value.encode() if isinstance(value, str) else value
        label = name.encode()
        self._hash.update(_LEN.pack(len(label)) + label + _LEN.pack(len(data)))
        self._hash.update(data)
        if self._explain:
            self.fields.append((name, xxhash.xxh3_64_hexdigest(data)))

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def digest_file(path: str) -> tuple[int, bytes, bytes | None]:
    """Size and xxh3-128 digest of a file, read once in chunks.

    The content itself comes back too when the file fits in one chunk (all
    but generated Go sources), so header parsing needs no second read.
    """
    h = xxhash.xxh3_128()
    size = 0
    content: bytes | None = None
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        while chunk := os.read(fd, CHUNK):
            content = chunk if size == 0 else None
            h.update(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    return size, h.digest(), content if content is not None else (b"" if size == 0 else None)
