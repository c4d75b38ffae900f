"""`gocachemgr gc`: size and age limits for the local and shared tiers.

Under GOCACHEPROG go never trims its cache, and nothing else trims the share,
so this is what does. Both tiers are planned alike: *users* (a local body with
its index records, a shared action record, an output manifest) have a last use
and point to *objects*; users go oldest first, past ``max_age`` and then until
the tier is under ``max_size``, and an object goes only once no remaining user
points to it. Nothing used within ``grace`` is removed: a running build may
just have been handed its path. On the share files are renamed into ``trash/``
(NFS rule 5: never pull a file from under a reader) and deleted from there a
grace period later, all under the ``gc`` lease so two runs never overlap.
Module caches are not touched: go owns GOMODCACHE, and the shared module
store (``modules/``) is out of scope for now.
"""

from __future__ import annotations

import os
import re
import stat
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

from gocachemgr.config import Config
from gocachemgr.errors import UserError
from gocachemgr.index import Index
from gocachemgr.reporter import Reporter
from gocachemgr.store import is_hex_id
from gocachemgr.store.atomic import TEMP_PREFIX
from gocachemgr.store.lease import Lease, LeaseTimeout
from gocachemgr.store.local import USE_MTIME_INTERVAL
from gocachemgr.store.shared import ARTIFACT_KINDS, SharedStore, SharedUnavailable
from gocachemgr.units import format_size, parse_duration, parse_size

TIERS = ("local", "shared", "all")
DEFAULT_GRACE = 3600.0
TMP_MAX_AGE = 86400.0  # temp files older than this were left by killed processes
AUTO_GC_EVERY_NS = 5 * 60 * 10**9  # automatic gc at most this often per node
AUTO_GC_TARGET = 0.9  # an automatic gc trims to 90% of the cap, so it is not due again at once
PROGRESS_EVERY = 5000
_HEX2 = re.compile(r"[0-9a-f]{2}")
_HEX32 = re.compile(r"[0-9a-f]{32}")
_BODY = re.compile(r"([0-9a-f]{64})-d")
_TRASHED = re.compile(r"(\d{1,20})-.+")

Progress = Callable[[str], None]
T = TypeVar("T")


@dataclass(frozen=True)
class GcOptions:
    max_size: int | None = None
    max_age: float | None = None
    grace: float = DEFAULT_GRACE
    dry_run: bool = False


def parse_options(
    max_size: str | None, max_age: str | None, grace: str | None, dry_run: bool
) -> GcOptions:
    """GcOptions from flag text; a bad value is a UserError naming the flag and the fix."""
    return GcOptions(
        max_size=None if max_size is None else _parse("--max-size", max_size, parse_size),
        max_age=None if max_age is None else _parse("--max-age", max_age, parse_duration),
        grace=DEFAULT_GRACE if grace is None else _parse("--grace", grace, parse_duration),
        dry_run=dry_run,
    )


def _parse(flag: str, text: str, parse: Callable[[str], T]) -> T:
    try:
        return parse(text)
    except ValueError as exc:
        raise UserError(f"bad {flag}: {exc}") from None


@dataclass
class TierReport:
    """What one tier's gc did (or, with --dry-run, would do)."""

    tier: str
    size_before: int = 0
    size_after: int = 0
    files_removed: int = 0  # shared: moved into trash/
    bytes_removed: int = 0
    temp_files_removed: int = 0
    trash_deleted: int = 0
    skipped_in_use: int = 0  # planned, but used or rewritten while gc ran
    over_cap: bool = False  # still over --max-size: the rest was used within the grace period


@dataclass
class GcReport:
    dry_run: bool
    seconds: float = 0.0
    tiers: list[TierReport] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class _Object:
    size: int
    path: Path


@dataclass
class _User:
    """Something with a last use that keeps objects alive (see the module docstring)."""

    last_use: float
    size: int  # its own bytes (a record, a manifest)
    objects: tuple[str, ...]
    path: Path | None  # None: a stand-in for a local body or an orphan object
    mtime_ns: int = 0  # as scanned: a file changed since then is left alone
    action_ids: tuple[str, ...] = ()  # local: the body's index records, forgotten with it


def run_gc(
    config: Config, tier: str, options: GcOptions, progress: Progress | None = None
) -> GcReport:
    """Collect the tiers ``tier`` names (local, shared or all)."""
    progress = progress or (lambda line: None)
    report = GcReport(options.dry_run)
    start = time.monotonic()
    if tier in ("local", "all"):
        index = Index(config.index_dir)
        try:
            report.tiers.append(gc_local(config, index, options, progress))
        finally:
            index.close()
    if tier in ("shared", "all"):
        report.tiers.append(gc_shared(config, options, progress))
    report.seconds = round(time.monotonic() - start, 3)
    return report


# -- planning (both tiers) ----------------------------------------------------------


def _plan(
    users: list[_User],
    objects: dict[str, _Object],
    options: GcOptions,
    now: float,
    protect_after: float,
) -> tuple[list[_User], bool]:
    """The users to remove, oldest first, and whether the tier stays over the cap."""
    refs = Counter(o for u in users for o in u.objects)
    total = sum(u.size for u in users) + sum(o.size for o in objects.values())
    chosen: list[_User] = []
    for user in sorted(users, key=lambda u: u.last_use):
        too_old = options.max_age is not None and user.last_use < now - options.max_age
        too_big = options.max_size is not None and total > options.max_size
        if not (too_old or too_big) or user.last_use >= protect_after:
            break  # sorted: every later user is younger still
        chosen.append(user)
        total -= user.size
        for name in user.objects:
            refs[name] -= 1
            if refs[name] == 0:
                total -= objects[name].size
    over = options.max_size is not None and total > options.max_size
    return chosen, over


def _apply(
    users: list[_User],
    chosen: list[_User],
    objects: dict[str, _Object],
    remove_user: Callable[[_User], bool],
    remove_object: Callable[[str, _Object], bool],
    report: TierReport,
) -> None:
    """Remove the chosen users, then each object no remaining user points to."""
    removed = {id(u) for u in chosen if remove_user(u)}
    report.skipped_in_use += len(chosen) - len(removed)
    for user in chosen:
        if id(user) in removed and user.path is not None:
            report.files_removed += 1
            report.bytes_removed += user.size
    still_used = {o for u in users if id(u) not in removed for o in u.objects}
    freed = {o for u in chosen if id(u) in removed for o in u.objects} - still_used
    for name in sorted(freed):
        if remove_object(name, objects[name]):
            report.files_removed += 1
            report.bytes_removed += objects[name].size
        else:
            report.skipped_in_use += 1


def _orphans(users: list[_User], objects: dict[str, _Object], last_use: dict[str, float]) -> None:
    """Give every object no user points to a stand-in user, so it ages like the rest."""
    used = {o for u in users for o in u.objects}
    users += [_User(last_use[name], 0, (name,), None) for name in objects if name not in used]


def _files(
    directory: Path, progress: Progress, label: str
) -> Iterator[tuple[str, Path, os.stat_result]]:
    """Regular files in ``directory/<2 hex>/``, never following a symlink."""
    seen = 0
    try:
        shards = sorted(e.name for e in os.scandir(directory) if e.is_dir(follow_symlinks=False))
    except FileNotFoundError:
        return
    for shard in shards:
        if not _HEX2.fullmatch(shard):
            continue
        try:
            entries = list(os.scandir(directory / shard))
        except FileNotFoundError:
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if not entry.is_file(follow_symlinks=False):
                continue
            seen += 1
            if seen % PROGRESS_EVERY == 0:
                progress(f"gc: scanned {seen} {label}")
            yield entry.name, Path(entry.path), st


def _remove_old_temp(path: Path, st: os.stat_result, now: float, dry_run: bool) -> int:
    """Delete a temp file left by a killed process (1 day old); returns 1 if it goes."""
    if st.st_mtime >= now - TMP_MAX_AGE:
        return 0
    if not dry_run:
        path.unlink(missing_ok=True)
    return 1


def _plan_line(chosen: list[_User], what: str, options: GcOptions) -> str:
    if not chosen:
        return "gc: nothing to remove"
    return f"gc: {'would remove' if options.dry_run else 'removing'} {len(chosen)} {what}"


def _unchanged(path: Path, mtime_ns: int) -> bool | None:
    """True if the file is as scanned, False if it changed, None if it is gone."""
    try:
        return os.lstat(path).st_mtime_ns == mtime_ns
    except FileNotFoundError:
        return None


def _older_than(path: Path, when: float) -> bool | None:
    try:
        return os.lstat(path).st_mtime < when
    except FileNotFoundError:
        return None


# -- local tier ---------------------------------------------------------------------


def gc_local(config: Config, index: Index, options: GcOptions, progress: Progress) -> TierReport:
    """LRU over the bodies in GOCACHE (with their index records) and `gocachemgr build`'s
    outputs; the body's mtime is its last use, to the hour (see LocalStore.get)."""
    if options.max_size is None and config.local_max_size is not None:
        options = GcOptions(config.local_max_size, options.max_age, options.grace, options.dry_run)
    report = TierReport("local")
    now = time.time()
    # A hit bumps the mtime only when it is an hour old: the last use may be an hour later.
    protect_after = now - options.grace - USE_MTIME_INTERVAL
    progress("gc: scanning the local tier")
    objects: dict[str, _Object] = {}
    last_use: dict[str, float] = {}
    users: list[_User] = []
    by_output: dict[str, list[str]] = {}
    pending = index.pending_ids()
    for action_id, entry in index.actions():
        by_output.setdefault(entry.output_id, []).append(action_id)
    for name, path, st in _files(config.gocache_dir, progress, "local files"):
        if name.startswith(TEMP_PREFIX):
            report.temp_files_removed += _remove_old_temp(path, st, now, options.dry_run)
        elif (m := _BODY.fullmatch(name)) and m.group(1)[:2] == path.parent.name:
            output_id = m.group(1)
            objects[output_id] = _Object(st.st_size, path)
            actions = tuple(by_output.get(output_id, ()))
            # Waiting for upload: kept (it is not on the share yet).
            used = now if pending.intersection(actions) else st.st_mtime
            users.append(_User(used, 0, (output_id,), None, action_ids=actions))
    _scan_local_artifacts(
        config.local_dir / "artifacts", objects, last_use, users, report, now, options, progress
    )
    _orphans(users, objects, last_use)
    report.size_before = sum(u.size for u in users) + sum(o.size for o in objects.values())
    chosen, report.over_cap = _plan(users, objects, options, now, protect_after)

    def remove_user(user: _User) -> bool:
        if user.path is None:  # a body (or an orphan output): it is its own object
            name = user.objects[0]
            if _older_than(objects[name].path, protect_after) is False:
                return False  # used again meanwhile
            if user.action_ids and not options.dry_run:
                index.forget_actions({a: name for a in user.action_ids})
            return True
        state = _unchanged(user.path, user.mtime_ns)
        if state is False:
            return False
        if state and not options.dry_run:
            user.path.unlink(missing_ok=True)
        return True

    def remove_object(name: str, obj: _Object) -> bool:
        old = _older_than(obj.path, protect_after)
        if old is False:
            return False  # used again meanwhile (a put of the same output touches it)
        if old and not options.dry_run:
            obj.path.unlink(missing_ok=True)
        return True

    progress(_plan_line(chosen, "local entries", options))
    _apply(users, chosen, objects, remove_user, remove_object, report)
    report.size_after = report.size_before - report.bytes_removed
    if not options.dry_run:
        index.set_total("local_bytes", report.size_after)
        index.add_counters({"gc_runs": 1, "gc_bytes_removed_local": report.bytes_removed})
    return report


def _scan_local_artifacts(
    root: Path,
    objects: dict[str, _Object],
    last_use: dict[str, float],
    users: list[_User],
    report: TierReport,
    now: float,
    options: GcOptions,
    progress: Progress,
) -> None:
    """`gocachemgr build` outputs: a manifest's mtime is its last use (bumped on a hit)."""
    from gocachemgr.artifacts import Manifest

    for name, path, st in _files(root / "objects", progress, "local outputs"):
        if name.startswith(TEMP_PREFIX):
            report.temp_files_removed += _remove_old_temp(path, st, now, options.dry_run)
        elif is_hex_id(name):
            objects[f"artifact:{name}"] = _Object(st.st_size, path)
            last_use[f"artifact:{name}"] = st.st_mtime
    for name, path, st in _files(root / "manifests", progress, "local manifests"):
        if name.startswith(TEMP_PREFIX):
            report.temp_files_removed += _remove_old_temp(path, st, now, options.dry_run)
            continue
        try:
            manifest = Manifest.parse(path.read_bytes(), name)
        except OSError:
            continue
        outputs = () if manifest is None else manifest.outputs
        names = tuple(f"artifact:{o.sha256}" for o in outputs if f"artifact:{o.sha256}" in objects)
        users.append(_User(st.st_mtime, st.st_size, names, path, st.st_mtime_ns))


# -- shared tier --------------------------------------------------------------------


def gc_shared(config: Config, options: GcOptions, progress: Progress) -> TierReport:
    """Collect the share under the ``gc`` lease (see the module docstring)."""
    config.require_shared_dir()
    if not options.dry_run:
        config.refuse_read_only("gc the shared tier")
    shared = SharedStore(config.shared_dir)
    try:
        shared.open()
    except SharedUnavailable as exc:
        raise UserError(f"cannot gc the shared tier: {exc}") from None
    if options.dry_run:
        return _collect_shared(shared, options, progress)
    lease = Lease(
        config.shared_dir / "locks",
        "gc",
        what="gocachemgr gc",
        stale_after=config.lease_stale,
        timeout=config.shared_timeout,
    )
    try:
        lease.acquire()
    except LeaseTimeout as exc:
        raise UserError(f"another gc is running: {exc}") from None
    try:
        report = _collect_shared(shared, options, progress, lost=lambda: lease.lost)
    finally:
        lease.release()
    return report


def _collect_shared(
    shared: SharedStore,
    options: GcOptions,
    progress: Progress,
    lost: Callable[[], bool] = lambda: False,
) -> TierReport:
    report = TierReport("shared")
    root = shared.root
    now = time.time()
    # Readers copy and verify before use, so on the share grace needs no slack.
    protect_after = now - options.grace
    progress("gc: emptying the shared trash/ and tmp/")
    report.trash_deleted = _empty_trash(root / "trash", now - options.grace, options.dry_run)
    for entry, st in _plain_files(root / "tmp"):
        report.temp_files_removed += _remove_old_temp(Path(entry.path), st, now, options.dry_run)
    progress("gc: scanning the shared tier")
    objects: dict[str, _Object] = {}
    last_use: dict[str, float] = {}
    for name, path, st in _files(root / "objects", progress, "shared objects"):
        if is_hex_id(name) and name[:2] == path.parent.name:
            objects[name] = _Object(st.st_size, path)
            last_use[name] = st.st_mtime
    users: list[_User] = []
    for name, path, st in _files(root / "actions", progress, "shared records"):
        if not (is_hex_id(name) and name[:2] == path.parent.name):
            continue
        try:
            entry = shared.peek_action(name)
        except FileNotFoundError:
            continue
        points_to = (entry.output_id,) if entry and entry.output_id in objects else ()
        users.append(_User(st.st_mtime, st.st_size, points_to, path, st.st_mtime_ns))
    users += _shared_manifests(shared, objects, progress)
    _orphans(users, objects, last_use)
    report.size_before = sum(u.size for u in users) + sum(o.size for o in objects.values())
    chosen, report.over_cap = _plan(users, objects, options, now, protect_after)
    if lost():
        raise UserError("lost the gc lease (another gc broke it); nothing removed; run gc again")

    def trash(path: Path) -> None:
        kind = path.parent.parent.name
        dest = root / "trash" / f"{time.time_ns()}-{kind}-{path.name}"
        try:
            os.rename(path, dest)
        except FileNotFoundError:
            pass  # gone meanwhile (quarantined by a reader)

    def remove_user(user: _User) -> bool:
        if user.path is None:
            return True
        state = _unchanged(user.path, user.mtime_ns)
        if state is False:
            return False  # rewritten or used since the scan
        if state and not options.dry_run:
            trash(user.path)
        return True

    def remove_object(name: str, obj: _Object) -> bool:
        old = _older_than(obj.path, protect_after)
        if old is False:
            return False  # an upload found it present and touched it: in use again
        if old and not options.dry_run:
            trash(obj.path)
        return True

    progress(_plan_line(chosen, "shared entries (into trash/)", options))
    _apply(users, chosen, objects, remove_user, remove_object, report)
    report.size_after = report.size_before - report.bytes_removed
    return report


def _shared_manifests(
    shared: SharedStore, objects: dict[str, _Object], progress: Progress
) -> list[_User]:
    """Output manifests keep their objects; graph and other records age on their own."""
    from gocachemgr.artifacts import Manifest

    users: list[_User] = []
    base = shared.root / "artifacts"
    for kind in sorted(ARTIFACT_KINDS):
        for name, path, st in _files(base / kind if kind else base, progress, "shared manifests"):
            if not _HEX32.fullmatch(name) or name[:2] != path.parent.name:
                continue
            names: tuple[str, ...] = ()
            if not kind:
                try:
                    raw = shared.get_manifest(name)
                except OSError:
                    continue
                manifest = Manifest.parse(raw, name) if raw is not None else None
                if manifest is not None:
                    names = tuple(o.sha256 for o in manifest.outputs if o.sha256 in objects)
            users.append(_User(st.st_mtime, st.st_size, names, path, st.st_mtime_ns))
    return users


def _plain_files(directory: Path) -> Iterator[tuple[os.DirEntry[str], os.stat_result]]:
    """Regular files with their lstat; a file gone meanwhile (an upload in ``tmp/``
    renamed into place) is skipped, not an error."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return
    for entry in entries:
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        if stat.S_ISREG(st.st_mode):
            yield entry, st


def _empty_trash(trash: Path, before: float, dry_run: bool) -> int:
    """Delete what has been in trash/ since before ``before`` (the name says when it came)."""
    deleted = 0
    for entry, st in _plain_files(trash):
        m = _TRASHED.fullmatch(entry.name)
        since = int(m.group(1)) / 1e9 if m else st.st_mtime
        if since < before:
            if not dry_run:
                Path(entry.path).unlink(missing_ok=True)
            deleted += 1
    return deleted


# -- automatic local gc ---------------------------------------------------------------


def auto_gc(config: Config, reporter: Reporter) -> None:
    """After a go command: a local gc when the running total is over ``local_max_size``.

    Cheap when not due (one lmdb read); at most once per AUTO_GC_EVERY_NS per node
    (the claim is one lmdb transaction, so concurrent commands do not both run it).
    Trouble is one warning; the go command's exit code is never changed.
    """
    cap = config.local_max_size
    if cap is None:
        return
    try:
        index = Index(config.index_dir)  # shares the lmdb env of a caller that holds one
        try:
            total = index.counters(totals=True).get("local_bytes", 0)
            if total <= cap or not index.claim_interval(
                "last_auto_gc_ns", time.time_ns(), AUTO_GC_EVERY_NS
            ):
                return
            options = GcOptions(max_size=int(cap * AUTO_GC_TARGET))
            gc_local(config, index, options, progress=lambda line: None)
            index.add_counters({"gc_auto_runs": 1})
        finally:
            index.close()
    except (UserError, OSError) as exc:
        reporter.warn_once(f"automatic local gc failed ({exc}); run `gocachemgr gc` by hand")


def render_report(report: GcReport) -> list[str]:
    """The human summary: per tier, what went (or would go) and the size before and after."""
    verb = "would remove" if report.dry_run else "removed"
    lines = []
    for t in report.tiers:
        where = " (moved to trash/)" if t.tier == "shared" and not report.dry_run else ""
        lines.append(
            f"{t.tier}: {verb} {t.files_removed:,} files, {format_size(t.bytes_removed)}{where}; "
            f"size {format_size(t.size_before)} -> {format_size(t.size_after)}"
        )
        extras = [
            f"{t.temp_files_removed:,} stale temp files" if t.temp_files_removed else "",
            f"{t.trash_deleted:,} files deleted from trash/" if t.trash_deleted else "",
            f"{t.skipped_in_use:,} kept: used while gc ran" if t.skipped_in_use else "",
            "still over --max-size: the rest was used too recently (--grace)" if t.over_cap else "",
        ]
        if any(extras):
            lines.append("  " + "; ".join(e for e in extras if e))
    lines.append(
        f"{'dry run, nothing changed; ' if report.dry_run else ''}took {report.seconds:.1f}s"
    )
    return lines
