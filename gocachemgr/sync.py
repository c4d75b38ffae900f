"""`gocachemgr sync`: upload what earlier runs left pending (killed, timed out, share down)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from gocachemgr.config import Config
from gocachemgr.errors import UserError
from gocachemgr.reporter import Reporter
from gocachemgr.wiring import open_tiered


@dataclass(frozen=True)
class SyncResult:
    done: int
    failed: int
    pending: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def sync_pending(config: Config, progress: Callable[[int, int], None] | None = None) -> SyncResult:
    """Upload every pending entry; raises UserError when the share cannot take uploads."""
    config.require_shared_dir()
    config.refuse_read_only("sync")
    reporter = Reporter(write=None)
    store = open_tiered(config, reporter=reporter)
    try:
        if not store.wait_shared(config.shared_timeout) or not store.shared_writable:
            raise UserError(f"cannot sync: {store.shared_problem}")
        total = store.resume_pending(background=False)
        while not store.flush_uploads(timeout=0.2):
            if progress:
                progress(total - store.uploads_running(), total)
        if progress and total:
            progress(total, total)
        counts = store.counters.snapshot()
        store.counters.flush(store.local.index)
        pending = store.local.index.count_pending()
        if reporter.message and pending:
            raise UserError(f"{pending} uploads still pending: {reporter.message}")
        return SyncResult(counts.get("uploads_done", 0), counts.get("uploads_failed", 0), pending)
    finally:
        store.close()
        store.local.index.close()
