"""The lmdb index on local disk: action records, pending uploads, counters.

LMDB needs a local mmap and working POSIX locks, so this directory must never
live on NFS. Several processes on one node share it safely (lmdb's own lock
file); writers are serialised by lmdb and each write is one short transaction.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from pathlib import Path

import lmdb

from gocachemgr.errors import UserError
from gocachemgr.store import ActionEntry

MAP_SIZE = 1 << 32  # sparse; grows on disk only as entries are written
_COUNTER = struct.Struct(">q")


class IndexOpenError(UserError):
    """The index cannot be opened (permissions, full disk, damaged file)."""


class Index:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        try:
            directory.mkdir(parents=True, exist_ok=True)
            # metasync=False keeps ACI and drops only the last transactions on
            # a power cut; a lost record is a miss, never a wrong answer.
            self.env = lmdb.open(
                str(directory), map_size=MAP_SIZE, max_dbs=32, metasync=False, readahead=False
            )
            self.env.reader_check()  # clear reader slots of killed processes
            self._actions = self.env.open_db(b"actions")
            self._pending = self.env.open_db(b"pending")
            self._stats = self.env.open_db(b"stats")
        except (lmdb.Error, OSError) as exc:
            raise IndexOpenError(
                f"cannot open the lmdb index at {directory}: {exc}; it must be a writable "
                f"directory on a local disk (delete it to start afresh)"
            ) from None

    def close(self) -> None:
        self.env.close()

    def get_action(self, action_id: str) -> ActionEntry | None:
        with self.env.begin(db=self._actions) as txn:
            raw = txn.get(bytes.fromhex(action_id))
        return ActionEntry.unpack(raw) if raw is not None else None

    def put_action(self, action_id: str, entry: ActionEntry, *, pending: bool) -> None:
        """Record an entry; with ``pending`` also queue it for upload, in the same transaction."""
        key = bytes.fromhex(action_id)
        packed = entry.pack()
        with self.env.begin(write=True) as txn:
            txn.put(key, packed, db=self._actions)
            if pending:
                txn.put(key, packed, db=self._pending)

    def delete_action(self, action_id: str) -> None:
        with self.env.begin(write=True, db=self._actions) as txn:
            txn.delete(bytes.fromhex(action_id))

    def done_pending(self, action_id: str) -> None:
        with self.env.begin(write=True, db=self._pending) as txn:
            txn.delete(bytes.fromhex(action_id))

    def pending(self) -> Iterator[tuple[str, ActionEntry]]:
        """Snapshot of queued uploads (read in one transaction, yielded after it ends)."""
        with self.env.begin(db=self._pending) as txn:
            items = [(k.hex(), ActionEntry.unpack(v)) for k, v in txn.cursor()]
        yield from items

    def count_pending(self) -> int:
        with self.env.begin(db=self._pending) as txn:
            return txn.stat(self._pending)["entries"]

    def actions(self) -> Iterator[tuple[str, ActionEntry]]:
        with self.env.begin(db=self._actions) as txn:
            items = [(k.hex(), ActionEntry.unpack(v)) for k, v in txn.cursor()]
        yield from items

    def add_counters(self, deltas: Mapping[str, int]) -> None:
        if not any(deltas.values()):
            return
        with self.env.begin(write=True, db=self._stats) as txn:
            for name, delta in deltas.items():
                if delta:
                    key = name.encode()
                    old = txn.get(key)
                    value = (_COUNTER.unpack(old)[0] if old else 0) + delta
                    txn.put(key, _COUNTER.pack(value))

    def counters(self) -> dict[str, int]:
        with self.env.begin(db=self._stats) as txn:
            return {k.decode(): _COUNTER.unpack(v)[0] for k, v in txn.cursor()}

    def zero_counters(self) -> None:
        with self.env.begin(write=True) as txn:
            txn.drop(self._stats, delete=False)
