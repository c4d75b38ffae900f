"""FrameReader: go's request stream read in whatever pieces the pipe delivers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import random
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

import pytest

from gocachemgr.cacheprog.framing import (
    MAX_LINE,
    READ_SIZE,
    BodyError,
    FrameReader,
    FramingError,
)
from tests.protocol_helpers import feed, split_at


def run(pieces: Iterable[bytes], work: Callable[[FrameReader], Coroutine[Any, Any, Any]]) -> Any:
    """Feed ``pieces`` (then EOF) to a StreamReader while ``work`` reads it."""

    async def main() -> Any:
        stream = asyncio.StreamReader(limit=1 << 20)
        feeder = asyncio.ensure_future(feed(stream, pieces))
        try:
            return await asyncio.wait_for(work(FrameReader(stream)), 30)
        finally:
            await feeder

    return asyncio.run(main())


async def all_lines(reader: FrameReader) -> list[bytes]:
    lines = []
    while (line := await reader.next_line()) is not None:
        lines.append(line)
    return lines


class Collect:
    """A body sink that records each chunk it is handed."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def __call__(self, data: bytes) -> None:
        self.chunks.append(bytes(data))

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


def body_line(body: bytes) -> bytes:
    return b'"' + base64.b64encode(body) + b'"\n'


def test_blank_lines_are_tolerated() -> None:
    data = b'\n\n{"ID":1}\n\n  \r\n\t\n{"ID":2}\n\n\n'
    assert run([data], all_lines) == [b'{"ID":1}', b'{"ID":2}']


def test_last_line_without_newline_is_returned_at_eof() -> None:
    assert run([b'{"ID":1}\n\n{"ID":2}'], all_lines) == [b'{"ID":1}', b'{"ID":2}']


def test_only_blank_input_is_end_of_input() -> None:
    assert run([b"\n\n   \n"], all_lines) == []
    assert run([], all_lines) == []


def test_lines_split_across_reads_byte_by_byte() -> None:
    data = b'{"ID":1,"Command":"get"}\n\n{"ID":22,"Command":"close"}\n\n'
    pieces = [data[i : i + 1] for i in range(len(data))]
    assert run(pieces, all_lines) == [b'{"ID":1,"Command":"get"}', b'{"ID":22,"Command":"close"}']


def test_lines_split_at_random_points() -> None:
    rng = random.Random(7)
    lines = [f'{{"ID":{i},"Command":"get","pad":"{"x" * rng.randrange(200)}"}}'.encode()
             for i in range(50)]
    data = b"".join(line + b"\n\n" for line in lines)
    for _ in range(20):
        cuts = [rng.randrange(len(data)) for _ in range(rng.randrange(1, 40))]
        assert run(split_at(data, cuts), all_lines) == lines


def test_body_split_at_every_chunk_boundary() -> None:
    body = bytes(range(256))[:47] + b"\x00\xff\n\"" + os.urandom(20)
    before = b'{"ID":1,"Command":"put"}\n\n'
    after = b'{"ID":2,"Command":"close"}\n\n'
    data = before + body_line(body) + after

    async def work(reader: FrameReader) -> tuple[bytes | None, bytes, int, bytes | None]:
        first = await reader.next_line()
        sink = Collect()
        size = await reader.read_body(sink)
        return first, sink.data, size, await reader.next_line()

    start = len(before)
    for cut in range(start, len(data) + 1):
        first, got, size, nxt = run([data[:cut], data[cut:]], work)
        assert (first, got, size, nxt) == (before.strip(), body, len(body), after.strip()), cut
    # And in three pieces, every pair of cut points inside the body line.
    end = start + len(body_line(body))
    for a in range(start, end, 3):
        for b in range(a, end, 5):
            assert run(split_at(data, [a, b]), work)[1] == body


def test_body_in_random_small_pieces() -> None:
    rng = random.Random(3)
    for _ in range(30):
        body = os.urandom(rng.randrange(1, 3000))
        data = body_line(body) + b'{"ID":9}\n'
        pieces, i = [], 0
        while i < len(data):
            n = rng.randrange(1, 17)
            pieces.append(data[i : i + n])
            i += n

        async def work(reader: FrameReader) -> tuple[bytes, bytes | None]:
            sink = Collect()
            await reader.read_body(sink)
            return sink.data, await reader.next_line()

        assert run(pieces, work) == (body, b'{"ID":9}')


def test_large_body_streams_without_holding_it_whole() -> None:
    body = os.urandom(6 * 1024 * 1024 + 5)
    encoded = body_line(body)
    piece = 256 * 1024
    pieces = [encoded[i : i + piece] for i in range(0, len(encoded), piece)]
    pieces.append(b'{"ID":3}\n')
    digest = hashlib.sha256()
    largest = 0
    buffered = 0

    async def work(reader: FrameReader) -> tuple[int, bytes | None]:
        def sink(data: bytes) -> None:
            nonlocal largest, buffered
            digest.update(data)
            largest = max(largest, len(data))
            buffered = max(buffered, len(reader._buf))

        size = await reader.read_body(sink)
        return size, await reader.next_line()

    size, nxt = run(pieces, work)
    assert size == len(body)
    assert digest.hexdigest() == hashlib.sha256(body).hexdigest()
    assert nxt == b'{"ID":3}'
    # Decoded a read at a time: never more than one read's worth held or handed on.
    assert largest <= READ_SIZE
    assert buffered <= READ_SIZE


def test_bad_base64_is_body_error_and_next_request_parses() -> None:
    # The damage arrives in a later read than the start of the body.
    good = base64.b64encode(os.urandom(3000))
    bad = b'"' + good[:1000] + b"*!*" + good[1003:] + b'"\n'
    data = bad + b'\n{"ID":2,"Command":"get"}\n\n'

    async def work(reader: FrameReader) -> tuple[str, bytes | None]:
        with pytest.raises(BodyError) as err:
            await reader.read_body(Collect())
        return str(err.value), await reader.next_line()

    for pieces in ([data], [data[i : i + 100] for i in range(0, len(data), 100)]):
        message, nxt = run(pieces, work)
        assert "base64" in message
        assert nxt == b'{"ID":2,"Command":"get"}'


@pytest.mark.parametrize("bad", [b'"QUJD\\n"', b'"QUJD=QUJD"', b'"QQ"', b'"Q U J D"'])
def test_malformed_base64_variants_are_body_errors(bad: bytes) -> None:
    async def work(reader: FrameReader) -> bytes | None:
        with pytest.raises(BodyError):
            await reader.read_body(Collect())
        return await reader.next_line()

    assert run([bad + b'\n{"ID":5}\n'], work) == b'{"ID":5}'


def test_truncated_body_at_eof() -> None:
    async def work(reader: FrameReader) -> tuple[str, bytes | None]:
        with pytest.raises(BodyError) as err:
            await reader.read_body(Collect())
        return str(err.value), await reader.next_line()

    message, nxt = run([b'"QUJDREVG', b"R0g="], work)
    assert "ended inside the body" in message
    assert nxt is None


def test_eof_before_the_body() -> None:
    async def work(reader: FrameReader) -> str:
        with pytest.raises(BodyError) as err:
            await reader.read_body(Collect())
        return str(err.value)

    assert "ended before the body" in run([b"\n\n  \n"], work)


def test_missing_body_leaves_the_next_request_alone() -> None:
    data = b'\n{"ID":3,"Command":"get"}\n\n'

    async def work(reader: FrameReader) -> tuple[str, bytes | None, list[bytes]]:
        sink = Collect()
        with pytest.raises(BodyError) as err:
            await reader.read_body(sink)
        assert sink.chunks == []
        return str(err.value), await reader.next_line(), sink.chunks

    message, nxt, _ = run([data], work)
    assert "base64 JSON string" in message
    assert nxt == b'{"ID":3,"Command":"get"}'


def test_empty_body_string_is_zero_bytes() -> None:
    async def work(reader: FrameReader) -> tuple[int, bytes | None]:
        return await reader.read_body(Collect()), await reader.next_line()

    assert run([b'""\n{"ID":1}\n'], work) == (0, b'{"ID":1}')


def test_over_long_line_is_framing_error() -> None:
    data = b"x" * (MAX_LINE + 10)
    pieces = [data[i : i + 100_000] for i in range(0, len(data), 100_000)]

    async def work(reader: FrameReader) -> None:
        await reader.next_line()

    with pytest.raises(FramingError):
        run([*pieces, b"\n"], work)


def test_long_line_under_the_limit_is_fine() -> None:
    line = b'{"ID":1,"pad":"' + b"y" * (MAX_LINE // 2) + b'"}'
    pieces = [line[i : i + 4096] for i in range(0, len(line), 4096)]
    assert run([*pieces, b"\n\n"], all_lines) == [line]
