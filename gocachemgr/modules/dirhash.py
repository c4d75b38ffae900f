"""Go's ``h1:`` hash (golang.org/x/mod/sumdb/dirhash Hash1) of module zips and go.mod files.

It is what go.sum and ``.ziphash`` files record, so a zip or go.mod taken from
the shared store can be checked against go's own record before go sees it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, cast

CHUNK = 1 << 20
_UTF8_NAME_FLAG = 0x800

# What Python's zipfile and its decompressors raise on a damaged archive: a
# malformed file must surface as ZipHashError and nothing else.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    NotImplementedError,  # unsupported compression method (go: ErrAlgorithm)
    RuntimeError,  # encrypted member
    ValueError,  # includes UnicodeDecodeError of a name flagged UTF-8 that is not
    struct.error,  # headers are unpacked from file bytes
)


class ZipHashError(ValueError):
    """A zip that cannot be hashed: truncated, not a zip, or a member that cannot be read."""


def hash1(files: Iterable[tuple[str, Callable[[], BinaryIO]]]) -> str:
    """dirhash.Hash1: sha256 of the ``"%x  %s\\n"`` lines of (sha256(content), name), sorted.

    Names sort by their UTF-8 bytes as in go; a name from a zip that is not
    UTF-8 is carried as surrogate escapes and written back as its raw bytes.
    """
    entries = sorted(
        ((name.encode("utf-8", "surrogateescape"), open_) for name, open_ in files),
        key=lambda entry: entry[0],
    )
    summary = hashlib.sha256()
    for name, open_ in entries:
        if b"\n" in name:
            raise ValueError("dirhash: filenames with newlines are not supported")
        content = hashlib.sha256()
        with open_() as f:
            while chunk := f.read(CHUNK):
                content.update(chunk)
        summary.update(b"%s  %s\n" % (content.hexdigest().encode(), name))
    return "h1:" + base64.b64encode(summary.digest()).decode()


def hash_gomod(data: bytes) -> str:
    """The ``/go.mod h1:`` of go.sum: Hash1 over the single file name "go.mod"."""
    return hash1([("go.mod", lambda: io.BytesIO(data))])


def _raw_name(info: zipfile.ZipInfo) -> str:
    """The entry name as go sees it: its bytes, whatever the encoding flag says.

    Python decodes names without the UTF-8 flag as cp437 and cuts them at a NUL;
    ``orig_filename`` keeps the NUL and cp437 maps every byte, so this undoes both.
    """
    if info.flag_bits & _UTF8_NAME_FLAG:
        return info.orig_filename
    return info.orig_filename.encode("cp437").decode("utf-8", "surrogateescape")


def _opener(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[], BinaryIO]:
    def open_() -> BinaryIO:
        member = zf.open(info)  # reads and checks the local header, as go's Open does
        if not _raw_name(info).endswith("/"):
            return cast(BinaryIO, member)
        # go reads a directory entry as empty, and refuses one that claims content.
        member.close()
        if info.file_size:
            raise zipfile.BadZipFile(f"directory entry {info.orig_filename!r} has content")
        return io.BytesIO()

    return open_


@contextmanager
def _as_zip_hash_error(path: Path) -> Iterator[None]:
    try:
        yield
    except _ZIP_ERRORS as e:
        raise ZipHashError(f"cannot hash {path}: {type(e).__name__}: {e}") from e


def hash_zip(path: Path) -> str:
    """dirhash.HashZip: Hash1 over every entry's name and content, metadata ignored.

    Every entry counts, duplicates included; a duplicated name reads its last
    entry each time, as go's name-to-file map does. Opening ``path`` itself
    raises OSError as usual (gone is not corrupt); anything wrong once it is
    open raises ZipHashError.
    """
    with open(path, "rb") as f, _as_zip_hash_error(path), zipfile.ZipFile(f) as zf:
        infos = zf.infolist()
        last = {_raw_name(info): info for info in infos}
        return hash1((_raw_name(info), _opener(zf, last[_raw_name(info)])) for info in infos)
