"""Publish new module downloads of this node to the shared module store.

Runs after every ``gocachemgr go`` command (and as ``mod push``). The ledger
makes the common case — nothing new — a walk of local directory mtimes with
no access to the share beyond reading its epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field

from gocachemgr.config import Config
from gocachemgr.errors import UserError, describe_os_error
from gocachemgr.index import Index
from gocachemgr.modules.ledger import Ledger
from gocachemgr.modules.localcache import LocalVersion, version_dirs, versions_in
from gocachemgr.modules.store import ModuleOutcome, ModuleStore
from gocachemgr.reporter import Reporter
from gocachemgr.stats import Counters
from gocachemgr.store.lease import LeaseTimeout
from gocachemgr.store.shared import SharedStore, SharedUnavailable
from gocachemgr.store.tiered import UNWRITABLE

PUBLISH_WORKERS = 8


@dataclass
class PublishReport:
    modules_scanned: int = 0
    versions_published: int = 0
    files_written: int = 0
    bytes_written: int = 0
    rechecked: bool = False  # the store's epoch changed (or --all): every version was re-checked
    failed: list[str] = field(default_factory=list)  # "path@version: reason"

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def publish_modules(
    config: Config,
    *,
    recheck: bool = False,
    reporter: Reporter | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PublishReport:
    """Publish what is new in the local module cache; ``recheck`` checks every version.

    Raises UserError when the share cannot take modules at all (missing,
    read-only, full); a version that fails alone is listed in ``failed``.
    """
    config.require_shared_dir()
    config.refuse_read_only("publish modules")
    reporter = reporter or Reporter(write=None)
    counters = Counters()

    def on_corrupt(reason: str) -> None:
        counters.add("corrupt")
        reporter.warn_once(f"damaged file in the shared module store quarantined: {reason}")

    shared = SharedStore(config.shared_dir, on_corrupt=on_corrupt)
    report = PublishReport()
    index = Index(config.index_dir)
    try:
        try:
            shared.open()
            store = ModuleStore(
                shared, lease_stale=config.lease_stale, lease_timeout=config.shared_timeout
            )
            ledger = Ledger(index)
            report.rechecked = not ledger.bind(str(config.shared_dir), store.epoch()) or recheck
            _publish_all(config, store, ledger, report, counters, progress)
        except SharedUnavailable as exc:
            raise UserError(f"cannot publish modules: {exc}") from None
        except OSError as exc:
            raise UserError(
                f"cannot publish modules to {config.shared_dir}: {describe_os_error(exc)}"
            ) from None
    finally:
        counters.flush(index)
        index.close()
    return report


def _publish_all(
    config: Config,
    store: ModuleStore,
    ledger: Ledger,
    report: PublishReport,
    counters: Counters,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Publish every module with something new, several at once: on NFS each file costs
    a few round trips (open, fsync, link), and they overlap well across modules."""
    dirs = list(version_dirs(config.gomodcache_dir / "cache" / "download"))
    work: list[tuple[str, int, list[LocalVersion]]] = []
    for escaped_path, directory, mtime_ns in dirs:
        report.modules_scanned += 1
        if not report.rechecked and ledger.dir_unchanged(escaped_path, mtime_ns):
            continue
        versions = [
            v
            for v in versions_in(escaped_path, directory)
            if report.rechecked or ledger.published(v.key) != v.signature
        ]
        if versions:
            work.append((escaped_path, mtime_ns, versions))
        else:
            ledger.record([], (escaped_path, mtime_ns))
    if progress:
        progress(len(dirs) - len(work), len(dirs))
    with ThreadPoolExecutor(PUBLISH_WORKERS, thread_name_prefix="publish") as pool:
        futures = {
            pool.submit(_publish_module, store, path, versions): (
                path,
                mtime_ns,
                versions,
            )
            for path, mtime_ns, versions in work
        }
        for done, future in enumerate(as_completed(futures), len(dirs) - len(work) + 1):
            path, mtime_ns, versions = futures[future]
            _record(future.result(), ledger, (path, mtime_ns), versions, report, counters)
            if progress:
                progress(done, len(dirs))


def _publish_module(
    store: ModuleStore, escaped_path: str, versions: list[LocalVersion]
) -> ModuleOutcome:
    """Publish one module's versions (on a worker thread); trouble becomes failures."""
    try:
        return store.publish_module(escaped_path, versions)
    except LeaseTimeout as exc:
        reason = str(exc)
    except OSError as exc:
        if exc.errno in UNWRITABLE:
            raise
        reason = describe_os_error(exc)
    return ModuleOutcome(failed=[(v.key, reason) for v in versions])


def _record(
    outcome: ModuleOutcome,
    ledger: Ledger,
    directory: tuple[str, int],
    versions: list[LocalVersion],
    report: PublishReport,
    counters: Counters,
) -> None:
    """Account for one module's outcome; the directory counts as done only when all its
    versions are in the store."""
    by_key = {v.key: v for v in versions}
    # A version can go up over several passes (its .mod while go still downloads the
    # zip): it counts once, when the ledger first hears of it.
    new = sum(1 for key in outcome.written if ledger.published(key) is None)
    ledger.record(
        [(key, by_key[key].signature) for key in outcome.published],
        None if outcome.failed else directory,
    )
    report.versions_published += new
    report.files_written += outcome.files_written
    report.bytes_written += outcome.bytes_written
    report.failed += [f"{by_key[key].display}: {reason}" for key, reason in outcome.failed]
    counters.add("modules_published", new)
    counters.add("module_bytes_published", outcome.bytes_written)
    counters.add("modules_publish_failed", len(outcome.failed))
