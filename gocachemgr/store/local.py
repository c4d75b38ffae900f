"""The local tier: bodies as files inside GOCACHE, entries in the lmdb index.

Bodies live at ``$GOCACHE/ab/<output id>-d`` — the layout of go's own disk
cache — because go *moves* (instead of copying) a cached file on install when
its path is outside GOCACHE, and because ``go clean -cache`` should clear
them. The path is built from the GOCACHE string exactly as go sees it: go
compares prefixes as strings.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from gocachemgr.index import Index
from gocachemgr.store import ActionEntry, LocalHit
from gocachemgr.store.atomic import AtomicFile, VerifyError, sha256_file

# A body's mtime is its last use, to the hour (as in go's own cache): bumped on a hit
# only when older than this, so a hit rarely writes. gc relies on this accuracy.
USE_MTIME_INTERVAL = 3600.0


class LocalStore:
    def __init__(self, gocache_dir: str, index: Index) -> None:
        self.gocache_dir = gocache_dir
        self.index = index
        # Called with the size of each body this process adds (the running local total).
        self.on_new_object: Callable[[int], None] = lambda size: None

    def object_path(self, output_id: str) -> str:
        return os.path.join(self.gocache_dir, output_id[:2], f"{output_id}-d")

    def has_object(self, output_id: str, size: int) -> bool:
        try:
            return os.stat(self.object_path(output_id)).st_size == size
        except OSError:
            return False

    def get(self, action_id: str) -> LocalHit | None:
        """A hit only when the record exists and its body file is complete.

        A body removed behind our back (``go clean -cache``, gc) is a miss.
        """
        entry = self.index.get_action(action_id)
        if entry is None:
            return None
        path = self.object_path(entry.output_id)
        try:
            st = os.stat(path)
        except OSError:
            return None
        if st.st_size != entry.size:
            return None
        mark_used(path, st.st_mtime)
        return LocalHit(entry, path)

    def new_object_file(self, output_id: str) -> AtomicFile:
        """A temp file beside the object's final path (same directory, same filesystem)."""
        directory = Path(self.object_path(output_id)).parent
        directory.mkdir(parents=True, exist_ok=True)
        return AtomicFile(directory)

    def commit_object(self, f: AtomicFile, entry: ActionEntry) -> str:
        """Verify the written body against the entry and make it the object file.

        Raises VerifyError when the bytes are not what the output id says.
        """
        f.verify(entry.size, entry.output_id)
        target = self.object_path(entry.output_id)
        if self.has_object(entry.output_id, entry.size):
            f.abort()  # immutable and already complete
            _touch(target)  # in use again: a gc racing with this put must keep it
        else:
            f.commit(Path(target))
            self.on_new_object(entry.size)
        return target

    def record(self, action_id: str, entry: ActionEntry, *, pending: bool) -> None:
        self.index.put_action(action_id, entry, pending=pending)

    def check(self) -> list[str]:
        """Every indexed entry whose body exists but is damaged (for tests and doctor)."""
        problems = []
        for action_id, entry in self.index.actions():
            path = Path(self.object_path(entry.output_id))
            if not path.exists():
                continue  # a vanished body is a miss, not damage
            size, digest = sha256_file(path)
            if (size, digest) != (entry.size, entry.output_id):
                problems.append(f"action {action_id}: {path} has size {size} sha256 {digest}")
        return problems


def mark_used(path: str | Path, mtime: float | None = None) -> None:
    """Record a use of a local file for gc's LRU: bump its mtime when an hour old."""
    if mtime is None:
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            return
    if mtime < time.time() - USE_MTIME_INTERVAL:
        _touch(path)


def _touch(path: str | Path) -> None:
    try:
        os.utime(path)
    except OSError:
        pass  # only gc's ordering suffers


__all__ = ["LocalStore", "VerifyError"]
