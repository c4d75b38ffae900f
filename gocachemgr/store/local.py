"""The local tier: bodies as files inside GOCACHE, entries in the lmdb index.

Bodies live at ``$GOCACHE/ab/<output id>-d`` — the layout of go's own disk
cache — because go *moves* (instead of copying) a cached file on install when
its path is outside GOCACHE, and because ``go clean -cache`` should clear
them. The path is built from the GOCACHE string exactly as go sees it: go
compares prefixes as strings.
"""

from __future__ import annotations

import os
from pathlib import Path

from gocachemgr.index import Index
from gocachemgr.store import ActionEntry, LocalHit
from gocachemgr.store.atomic import AtomicFile, VerifyError, sha256_file


class LocalStore:
    def __init__(self, gocache_dir: str, index: Index) -> None:
        self.gocache_dir = gocache_dir
        self.index = index

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
        if entry is None or not self.has_object(entry.output_id, entry.size):
            return None
        return LocalHit(entry, self.object_path(entry.output_id))

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
        else:
            f.commit(Path(target))
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


__all__ = ["LocalStore", "VerifyError"]
