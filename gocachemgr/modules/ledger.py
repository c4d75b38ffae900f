"""What this node already published to the shared module store, kept in lmdb.

The scan after every go command must be cheap when nothing is new: a local
``@v`` directory whose mtime is unchanged is skipped without listing it, and a
version whose local files look the same as when they were published is
skipped without touching the share. The ledger belongs to one share and one
*epoch* of it: when ``mod verify`` or gc removes files from the store they
change the epoch, and every node re-checks its versions against the store on
its next publish (that is how a quarantined zip gets repaired).
"""

from __future__ import annotations

import time

from gocachemgr.index import Index

# An mtime this close to "now" may still change within the same clock tick
# (git's racy-clean rule): such a directory is scanned again next time.
RACY_NS = 2_000_000_000
_BINDING = b"\0binding"


class Ledger:
    def __init__(self, index: Index) -> None:
        self._env = index.env
        self._versions = self._env.open_db(b"modules_published")
        self._dirs = self._env.open_db(b"modules_dirs")

    def bind(self, share: str, epoch: str) -> bool:
        """Use the ledger for this share and epoch; False (and forget everything) if it was
        kept for another one."""
        binding = f"{share}\n{epoch}".encode()
        with self._env.begin(write=True) as txn:
            if txn.get(_BINDING, db=self._versions) == binding:
                return True
            txn.drop(self._versions, delete=False)
            txn.drop(self._dirs, delete=False)
            txn.put(_BINDING, binding, db=self._versions)
        return False

    def dir_unchanged(self, rel_dir: str, mtime_ns: int) -> bool:
        with self._env.begin(db=self._dirs) as txn:
            raw = txn.get(rel_dir.encode())
        return raw is not None and int(raw) == mtime_ns

    def record(
        self, versions: list[tuple[str, str]], directory: tuple[str, int] | None = None
    ) -> None:
        """Remember published versions as (``path@version``, signature) and, when the whole
        directory is done, its mtime (unless too recent to trust): one transaction, as
        every lmdb commit is a disk sync."""
        if directory is not None and time.time_ns() - directory[1] < RACY_NS:
            directory = None
        if not versions and directory is None:
            return
        with self._env.begin(write=True) as txn:
            for key, signature in versions:
                txn.put(key.encode(), signature.encode(), db=self._versions)
            if directory is not None:
                txn.put(directory[0].encode(), str(directory[1]).encode(), db=self._dirs)

    def published(self, version_key: str) -> str | None:
        """The local-files signature last published for ``path@version``, if any."""
        with self._env.begin(db=self._versions) as txn:
            raw = txn.get(version_key.encode())
        return raw.decode() if raw is not None else None
