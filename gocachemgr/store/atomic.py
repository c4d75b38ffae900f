"""The one way gocachemgr makes a file visible: temp file, verify, rename.

A reader (go, another node) only ever sees a complete, verified file or none:
the temp file is created with O_EXCL next to its target (same filesystem, so
``rename`` is atomic, also on an NFS server), hashed while it is written, and
removed on any failure, ``BaseException`` included.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

CHUNK = 1 << 20
NO_HARD_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK})
TEMP_PREFIX = ".tmp-"


class VerifyError(Exception):
    """The bytes written do not match the size or SHA-256 they must have."""


class AtomicFile:
    """A temp file in ``tmp_dir`` that becomes ``target`` only on ``commit``."""

    def __init__(self, tmp_dir: Path, *, fsync: bool = False, mode: int = 0o664) -> None:
        self._fsync = fsync
        self.size = 0
        self._hash = hashlib.sha256()
        name = f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(6)}"
        self.path = tmp_dir / name
        # O_EXCL: never write into a file somebody else created (or planted).
        self._fd: int | None = os.open(
            self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode
        )

    def write(self, data: bytes | memoryview) -> None:
        assert self._fd is not None, "write after commit/abort"
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._hash.update(data)
        self.size += len(data)

    def copy_from(self, src: BinaryIO) -> None:
        while chunk := src.read(CHUNK):
            self.write(chunk)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def verify(self, size: int, sha256_hex: str) -> None:
        if self.size != size:
            raise VerifyError(f"size {self.size} != expected {size}")
        if self.sha256 != sha256_hex:
            raise VerifyError(f"sha256 {self.sha256} != expected {sha256_hex}")

    def commit(self, target: Path, *, replace: bool = True) -> bool:
        """Publish the file as ``target``; return False if an immutable target already existed.

        With ``replace=False`` (content-addressed files) an existing target is
        kept and the temp file dropped: both hold the same bytes.
        """
        try:
            self._close()  # inside: a failed fsync/close must not leave the temp file behind
            if replace:
                os.replace(self.path, target)
                return True
            return _publish_once(self.path, target)
        finally:
            self._remove_temp()

    def abort(self) -> None:
        self._close()
        self._remove_temp()

    def _close(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if self._fsync:
                os.fsync(fd)
        finally:
            os.close(fd)

    def _remove_temp(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Committed files are already renamed; anything else is removed.
        self.abort()


def _publish_once(temp: Path, target: Path) -> bool:
    """Give ``temp`` the name ``target`` unless it exists: ``link`` fails atomically with EEXIST,
    also on an NFS server, where "check, then rename" could race with another node."""
    try:
        os.link(temp, target)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in NO_HARD_LINKS:
            raise
    # A filesystem without hard links: check, then rename (same bytes either way).
    if target.exists():
        return False
    os.replace(temp, target)
    return True


def sha256_file(path: Path) -> tuple[int, str]:
    """Size and SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()
