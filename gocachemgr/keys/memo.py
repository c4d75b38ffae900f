"""The file memo: path → stat fingerprint and hashes, in lmdb.

An unchanged file (same size, mtime, ctime, inode, device) is not read
again. The racy-clean rule (as in git): a file modified within RACY_NS of
when it was hashed may have been written again in the same timestamp tick,
so its memo entry is never trusted — it is re-hashed every time until it is
old enough.
"""

from __future__ import annotations

import os
import stat as stat_module
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gocachemgr.index import Index
from gocachemgr.keys.hashing import digest_file

RACY_NS = 2_000_000_000
NO_HEADER = bytes(16)
_STATE = struct.Struct(">QqqQQ16s16sq")


@dataclass(frozen=True)
class FileState:
    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    dev: int
    content: bytes  # xxh3-128 of the bytes
    header: bytes  # xxh3-128 of what can change the package graph (NO_HEADER for non-Go files)
    hashed_at_ns: int

    @property
    def racy(self) -> bool:
        return self.hashed_at_ns - self.mtime_ns < RACY_NS

    def same_file(self, st: os.stat_result) -> bool:
        return (self.size, self.mtime_ns, self.ctime_ns, self.ino, self.dev) == (
            st.st_size,
            st.st_mtime_ns,
            st.st_ctime_ns,
            st.st_ino,
            st.st_dev,
        )

    def pack(self) -> bytes:
        return _STATE.pack(
            self.size,
            self.mtime_ns,
            self.ctime_ns,
            self.ino,
            self.dev,
            self.content,
            self.header,
            self.hashed_at_ns,
        )

    @classmethod
    def unpack(cls, raw: bytes) -> FileState:
        return cls(*_STATE.unpack(raw))


def go_header_digest(content: bytes) -> bytes:
    from gocachemgr.keys.goheader import parse_header

    return parse_header(content).digest()


class FileMemo:
    def __init__(self, index: Index) -> None:
        self.env = index.env
        self.db = index.env.open_db(b"files")

    def load(self, paths: Iterable[str]) -> dict[str, FileState]:
        found: dict[str, FileState] = {}
        with self.env.begin(db=self.db) as txn:
            for path in paths:
                raw = txn.get(path.encode())
                if raw is not None:
                    found[path] = FileState.unpack(raw)
        return found

    def save(self, states: dict[str, FileState]) -> None:
        if not states:
            return
        with self.env.begin(write=True, db=self.db) as txn:
            for path, state in states.items():
                txn.put(path.encode(), state.pack())


@dataclass
class CheckResult:
    states: dict[str, FileState]
    hashed: int = 0  # files read and hashed this time
    statted: int = 0  # files stat-checked this time


def check_files(
    memo: FileMemo,
    paths: Iterable[str],
    *,
    now_ns: int,
    trusted: Callable[[str], bool] = lambda _path: False,
) -> CheckResult:
    """Current states of ``paths``: from the memo when provably unchanged, else re-hashed.

    ``trusted(path)`` says a live watcher saw no change to that path since the
    memo entry was written, so even the stat can be skipped. Raises
    FileNotFoundError (or another OSError) when a file cannot be read: the
    caller's view of the tree is stale.
    """
    wanted = list(dict.fromkeys(paths))
    known = memo.load(wanted)
    result = CheckResult({})
    fresh: dict[str, FileState] = {}
    for path in wanted:
        old = known.get(path)
        if old is not None and not old.racy and trusted(path):
            result.states[path] = old
            continue
        st = os.stat(path)
        result.statted += 1
        if not stat_module.S_ISREG(st.st_mode):
            raise IsADirectoryError(f"{path} is not a regular file")
        if old is not None and not old.racy and old.same_file(st):
            result.states[path] = old
            continue
        size, content_digest, content = digest_file(path)
        after = os.stat(path)
        header = NO_HEADER
        if path.endswith(".go"):
            if content is None:
                with open(path, "rb") as f:
                    content = f.read()
            header = go_header_digest(content)
        state = FileState(
            after.st_size,
            after.st_mtime_ns,
            after.st_ctime_ns,
            after.st_ino,
            after.st_dev,
            content_digest,
            header,
            now_ns,
        )
        if size != after.st_size or after.st_mtime_ns != st.st_mtime_ns:
            # Written while we read it: use the digest, but never trust the memo entry.
            state = FileState(
                state.size,
                state.mtime_ns,
                state.ctime_ns,
                state.ino,
                state.dev,
                content_digest,
                header,
                state.mtime_ns,
            )
        result.states[path] = state
        fresh[path] = state
        result.hashed += 1
    memo.save(fresh)
    return result
