"""The lmdb index on local disk: action records, pending uploads, counters.

LMDB needs a local mmap and working POSIX locks, so this directory must never
live on NFS. Several processes on one node share it safely (lmdb's own lock
file); writers are serialised by lmdb and each write is one short transaction.
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

import lmdb

from gocachemgr.errors import UserError
from gocachemgr.store import ActionEntry

MAP_SIZE = 1 << 32  # sparse; grows on disk only as entries are written
_COUNTER = struct.Struct(">q")
_COST = struct.Struct(">I")


class IndexOpenError(UserError):
    """The index cannot be opened (permissions, full disk, damaged file)."""


# One lmdb environment per directory and process: lmdb refuses a second open in
# the same process, and a `gocachemgr build` (index open) runs go through the
# runner, whose module publish opens the index too.
_ENVS: dict[str, tuple[lmdb.Environment, int]] = {}
_ENVS_LOCK = threading.Lock()


def _open_env(directory: Path) -> lmdb.Environment:
    key = os.path.realpath(directory)
    with _ENVS_LOCK:
        if key in _ENVS:
            env, users = _ENVS[key]
            _ENVS[key] = (env, users + 1)
            return env
        directory.mkdir(parents=True, exist_ok=True)
        # metasync=False keeps ACI and drops only the last transactions on
        # a power cut; a lost record is a miss, never a wrong answer.
        env = lmdb.open(
            str(directory), map_size=MAP_SIZE, max_dbs=32, metasync=False, readahead=False
        )
        env.reader_check()  # clear reader slots of killed processes
        _ENVS[key] = (env, 1)
        return env


def _release_env(directory: Path) -> None:
    key = os.path.realpath(directory)
    with _ENVS_LOCK:
        if key not in _ENVS:
            return
        env, users = _ENVS[key]
        if users > 1:
            _ENVS[key] = (env, users - 1)
            return
        del _ENVS[key]
    env.close()


class Index:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._closed = False
        try:
            self.env = _open_env(directory)
            self._actions = self.env.open_db(b"actions")
            self._pending = self.env.open_db(b"pending")
            self._stats = self.env.open_db(b"stats")
            # Separate tables, so old indexes keep working and `stats --zero` keeps totals.
            self._costs = self.env.open_db(b"costs")  # action id -> ">I" ms (ActionEntry.cost_ms)
            self._totals = self.env.open_db(b"totals")  # name -> ">q": running totals, gc state
        except (lmdb.Error, OSError) as exc:
            raise IndexOpenError(
                f"cannot open the lmdb index at {directory}: {exc}; it must be a writable "
                f"directory on a local disk (delete it to start afresh)"
            ) from None

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            _release_env(self.directory)

    def get_action(self, action_id: str) -> ActionEntry | None:
        key = bytes.fromhex(action_id)
        with self.env.begin(db=self._actions) as txn:
            raw = txn.get(key)
            return self._entry(txn, key, raw) if raw is not None else None

    def _entry(self, txn: lmdb.Transaction, key: bytes, packed: bytes) -> ActionEntry:
        """The packed record with its cost (kept in ``costs``) attached."""
        entry = ActionEntry.unpack(packed)
        cost = txn.get(key, db=self._costs)
        if cost is None:
            return entry
        return ActionEntry(entry.output_id, entry.size, entry.time_ns, _COST.unpack(cost)[0])

    def put_action(self, action_id: str, entry: ActionEntry, *, pending: bool) -> None:
        """Record an entry; with ``pending`` also queue it for upload, in the same transaction."""
        key = bytes.fromhex(action_id)
        packed = entry.pack()
        with self.env.begin(write=True) as txn:
            txn.put(key, packed, db=self._actions)
            if entry.cost_ms > 0:
                txn.put(key, _COST.pack(min(entry.cost_ms, 2**32 - 1)), db=self._costs)
            if pending:
                txn.put(key, packed, db=self._pending)

    def delete_action(self, action_id: str) -> None:
        key = bytes.fromhex(action_id)
        with self.env.begin(write=True) as txn:
            txn.delete(key, db=self._actions)
            txn.delete(key, db=self._costs)

    def forget_actions(self, expected: Mapping[str, str]) -> int:
        """Delete each action id's record if it still names the expected output id (gc: a
        put racing with the scan may have re-pointed it); pending ones stay. Returns how many."""
        removed = 0
        with self.env.begin(write=True) as txn:
            for action_id, output_id in expected.items():
                key = bytes.fromhex(action_id)
                raw = txn.get(key, db=self._actions)
                if raw is None or txn.get(key, db=self._pending) is not None:
                    continue
                if ActionEntry.unpack(raw).output_id == output_id:
                    txn.delete(key, db=self._actions)
                    txn.delete(key, db=self._costs)
                    removed += 1
        return removed

    def done_pending(self, action_id: str) -> None:
        with self.env.begin(write=True, db=self._pending) as txn:
            txn.delete(bytes.fromhex(action_id))

    def pending(self) -> Iterator[tuple[str, ActionEntry]]:
        """Snapshot of queued uploads (read in one transaction, yielded after it ends)."""
        with self.env.begin(db=self._pending) as txn:
            items = [(k.hex(), self._entry(txn, k, v)) for k, v in txn.cursor()]
        yield from items

    def count_pending(self) -> int:
        with self.env.begin(db=self._pending) as txn:
            return txn.stat(self._pending)["entries"]

    def actions(self) -> Iterator[tuple[str, ActionEntry]]:
        with self.env.begin(db=self._actions) as txn:
            items = [(k.hex(), self._entry(txn, k, v)) for k, v in txn.cursor()]
        yield from items

    def pending_ids(self) -> set[str]:
        with self.env.begin(db=self._pending) as txn:
            return {k.hex() for k in txn.cursor().iternext(keys=True, values=False)}

    def add_counters(self, deltas: Mapping[str, int], *, totals: bool = False) -> None:
        """Add to the counters, or (``totals``) to the running totals `stats --zero` keeps."""
        if not any(deltas.values()):
            return
        with self.env.begin(write=True, db=self._totals if totals else self._stats) as txn:
            for name, delta in deltas.items():
                if delta:
                    key = name.encode()
                    old = txn.get(key)
                    value = (_COUNTER.unpack(old)[0] if old else 0) + delta
                    txn.put(key, _COUNTER.pack(value))

    def counters(self, *, totals: bool = False) -> dict[str, int]:
        with self.env.begin(db=self._totals if totals else self._stats) as txn:
            return {k.decode(): _COUNTER.unpack(v)[0] for k, v in txn.cursor()}

    def set_total(self, name: str, value: int) -> None:
        with self.env.begin(write=True, db=self._totals) as txn:
            txn.put(name.encode(), _COUNTER.pack(value))

    def claim_interval(self, name: str, now_ns: int, every_ns: int) -> bool:
        """Record ``now_ns`` under ``name`` unless the last claim is under ``every_ns`` old.

        One write transaction, so of several processes claiming at once only one wins.
        """
        key = name.encode()
        with self.env.begin(write=True, db=self._totals) as txn:
            old = txn.get(key)
            if old is not None and 0 <= now_ns - _COUNTER.unpack(old)[0] < every_ns:
                return False
            txn.put(key, _COUNTER.pack(now_ns))
        return True

    def zero_counters(self) -> None:
        with self.env.begin(write=True) as txn:
            txn.drop(self._stats, delete=False)
