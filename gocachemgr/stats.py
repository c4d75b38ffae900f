"""Counters kept per process and added to the lmdb index when a run ends."""

from __future__ import annotations

import threading
from collections import Counter

from gocachemgr.index import Index

# The names `gocachemgr stats` reports, in display order, with their meaning.
COUNTERS: dict[str, str] = {
    "gets": "get requests from go",
    "hits_local": "gets answered from the local tier",
    "hits_shared": "gets answered from the shared tier (then kept locally)",
    "misses": "gets that found nothing usable",
    "puts": "put requests from go",
    "put_bytes": "bytes go stored",
    "hit_bytes_local": "bytes served from the local tier",
    "hit_bytes_shared": "bytes copied from the shared tier",
    "uploads_done": "entries uploaded to the shared tier",
    "uploads_failed": "uploads that failed (still pending unless their body vanished)",
    "corrupt": "damaged shared files found and quarantined",
    "shared_errors": "shared-tier I/O errors turned into misses or skipped uploads",
    "degraded_runs": "runs that fell back to local-only",
    "builds_hit_local": "`gocachemgr build` runs served from local outputs without go",
    "builds_hit_shared": "`gocachemgr build` runs served from the shared tier without go",
    "builds_miss": "`gocachemgr build` runs that ran go build",
    "modules_published": "module versions published to the shared module store",
    "module_bytes_published": "bytes of module files published to the shared store",
    "modules_publish_failed": "module versions that could not be published (retried later)",
}


class Counters:
    """Thread-safe in-memory counters; ``flush`` moves them into the index."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: Counter[str] = Counter()

    def add(self, name: str, amount: int = 1) -> None:
        assert name in COUNTERS, name
        with self._lock:
            self._values[name] += amount

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)

    def flush(self, index: Index) -> None:
        with self._lock:
            values, self._values = self._values, Counter()
        index.add_counters(values)


def read_stats(index: Index) -> dict[str, int]:
    """Every counter (zero when never seen) plus the live pending-upload count."""
    stored = index.counters()
    result = {name: stored.get(name, 0) for name in COUNTERS}
    result["uploads_pending"] = index.count_pending()
    return result
