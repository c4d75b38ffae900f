"""Build the stores from a Config: the one place that knows how the parts fit."""

from __future__ import annotations

from gocachemgr.config import Config
from gocachemgr.index import Index
from gocachemgr.reporter import Reporter
from gocachemgr.stats import Counters
from gocachemgr.store.local import LocalStore
from gocachemgr.store.shared import SharedStore
from gocachemgr.store.tiered import TieredStore


def open_tiered(
    config: Config, *, gocache_dir: str | None = None, reporter: Reporter | None = None
) -> TieredStore:
    """Open the index, the local tier and (if configured) the shared tier."""
    index = Index(config.index_dir)
    local = LocalStore(gocache_dir or str(config.gocache_dir), index)
    shared = (
        SharedStore(config.shared_dir, read_only=config.read_only)
        if config.shared_dir is not None
        else None
    )
    return TieredStore(
        local,
        shared,
        counters=Counters(),
        reporter=reporter or Reporter(),
        upload_workers=config.upload_workers,
    )
