"""Reading go's request stream: JSON lines, blank lines, and streamed base64 bodies.

Bodies can be large (linked test binaries), so they are decoded in chunks and
handed to a sink as they arrive instead of being held in memory whole.
"""

from __future__ import annotations

import asyncio
import binascii
from collections.abc import Callable

MAX_LINE = 1 << 20
READ_SIZE = 1 << 16
_WHITESPACE = b" \t\r\n"


class FramingError(Exception):
    """The stream cannot be read as go's protocol any more (over-long line)."""


class BodyError(Exception):
    """A body was missing, malformed or cut short; the request gets an Err reply."""


class FrameReader:
    def __init__(self, stream: asyncio.StreamReader) -> None:
        self._stream = stream
        self._buf = bytearray()
        self._eof = False

    async def _fill(self) -> bool:
        if self._eof:
            return False
        data = await self._stream.read(READ_SIZE)
        if not data:
            self._eof = True
            return False
        self._buf += data
        return True

    async def next_line(self) -> bytes | None:
        """The next non-blank line (without its newline), or None at end of input."""
        while True:
            newline = self._buf.find(b"\n")
            if newline >= 0:
                line = bytes(self._buf[:newline])
                del self._buf[: newline + 1]
                if line.strip():
                    return line
                continue
            if len(self._buf) > MAX_LINE:
                raise FramingError(f"request line longer than {MAX_LINE} bytes")
            if not await self._fill():
                line = bytes(self._buf)
                self._buf.clear()
                return line if line.strip() else None

    async def read_body(self, sink: Callable[[bytes], None]) -> int:
        """Decode the base64 string that follows a put, feeding ``sink``; returns its size.

        Raises BodyError after consuming what belongs to the body, so the next
        request still parses. A next value that is not a string is left alone.
        """
        while True:
            stripped = self._buf.lstrip(_WHITESPACE)
            del self._buf[: len(self._buf) - len(stripped)]
            if self._buf:
                break
            if not await self._fill():
                raise BodyError("input ended before the body")
        if self._buf[:1] != b'"':
            raise BodyError("expected the body as a base64 JSON string on the next line")
        del self._buf[:1]
        pending = bytearray()
        size = 0
        damaged: str | None = None
        while True:
            quote = self._buf.find(b'"')
            end = quote if quote >= 0 else len(self._buf)
            if damaged is None:
                pending += self._buf[:end]
            del self._buf[: end + (1 if quote >= 0 else 0)]
            usable = len(pending) if quote >= 0 else len(pending) - len(pending) % 4
            if damaged is None and usable:
                try:
                    data = binascii.a2b_base64(bytes(pending[:usable]), strict_mode=True)
                except binascii.Error as exc:
                    damaged = f"body is not valid base64 ({exc})"
                else:
                    sink(data)
                    size += len(data)
                del pending[:usable]
            if quote >= 0:
                break
            if not await self._fill():
                raise BodyError("input ended inside the body")
        if damaged is not None:
            raise BodyError(damaged)
        return size
