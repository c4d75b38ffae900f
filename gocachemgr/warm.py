"""`gocachemgr warm`: fill the shared tier for a workspace, or pull it into the local one.

A CI job runs ``warm`` once per change on a node that writes the share, so the
developers' and the other runners' first builds find everything compiled.
``warm --pull`` is the other side: before building, copy in parallel what the
last builds of this workspace used (the used lists of ``usage.py``).
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import IO

from gocachemgr.config import Config
from gocachemgr.errors import UserError
from gocachemgr.index import Index
from gocachemgr.prefetch import Prefetcher
from gocachemgr.reporter import Reporter
from gocachemgr.runner import run_go
from gocachemgr.sync import sync_pending
from gocachemgr.toolchain import find_go
from gocachemgr.usage import UsageLog, host_platform, workspace_key
from gocachemgr.wiring import open_tiered

PULL_WORKERS = 8

Progress = Callable[[str], None]


@dataclass
class Step:
    platform: str
    command: str  # what ran, for people: `go build ./...`
    seconds: float
    exit_code: int


@dataclass
class WarmReport:
    steps: list[Step] = field(default_factory=list)
    uploaded: int = 0  # entries uploaded to the share during the warm
    uploaded_bytes: int = 0  # bytes of bodies new on the share
    pending: int = 0  # entries still waiting for upload afterwards

    @property
    def ok(self) -> bool:
        return self.pending == 0 and all(s.exit_code == 0 for s in self.steps)

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "ok": self.ok}


@dataclass
class PullReport:
    lists: int  # used lists found (one per platform at most)
    entries: int  # action ids they name
    fetched: int  # copied into the local tier
    fetched_bytes: int
    over_budget: int  # not copied: prefetch_max_bytes reached

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def platform_name(platform: str | None) -> str:
    return platform or "/".join(host_platform())


def check_platforms(config: Config, specs: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """The platforms as given, each checked against `go tool dist list` (UserError if not)."""
    if not specs:
        return []
    go = find_go(config, env)
    proc = subprocess.run(
        [go, "tool", "dist", "list"], env=dict(env), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["no output"])[0]
        raise UserError(f"`go tool dist list` failed ({first}); check the go installation")
    known = set(proc.stdout.split())
    for spec in specs:
        if spec not in known:
            raise UserError(
                f"unknown platform {spec!r}: `go tool dist list` does not name it; "
                f"give GOOS/GOARCH, e.g. linux/arm64"
            )
    return list(dict.fromkeys(specs))


def platform_env(env: Mapping[str, str], platform: str | None) -> dict[str, str]:
    """``env`` targeting ``platform`` (None: as it is, i.e. the host or the user's GOOS/GOARCH)."""
    result = dict(env)
    if platform is not None:
        result["GOOS"], result["GOARCH"] = platform.split("/", 1)
    return result


def warm(
    config: Config,
    patterns: Sequence[str],
    *,
    tests: bool,
    platforms: Sequence[str],
    env: Mapping[str, str],
    cwd: str,
    progress: Progress,
    go_stdout: IO[bytes] | None = None,
) -> WarmReport:
    """Download modules, build (and with ``tests`` compile the tests of) ``patterns``
    for each platform through the cache, then upload everything to the share."""
    config.require_shared_dir()
    config.refuse_read_only("warm the shared dir")
    patterns = list(patterns) or ["./..."]
    targets: list[str | None] = list(platforms) or [None]
    index = Index(config.index_dir)
    try:
        before = index.counters()
    finally:
        index.close()
    sync_pending(config)  # checks the share is usable first, and clears an old backlog
    report = WarmReport()
    host = "/".join(host_platform())
    (config.local_dir / "tmp").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="warm-", dir=config.local_dir / "tmp") as out:
        plan: list[tuple[str | None, list[str]]] = [(targets[0], ["mod", "download"])]
        for platform in targets:
            plan.append((platform, ["build", "-o", f"{out}/", *patterns]))
            if tests and platform_name(platform) == host:
                # Runs no test, but links and vets like `go test`, so those are cached too.
                plan.append((platform, ["test", "-run", "^$", *patterns]))
            elif tests:
                plan.append((platform, ["test", "-c", "-o", f"{out}/", *patterns]))
        for platform, args in plan:
            shown = " ".join(["go", *args]).replace(f"{out}/", "<tmp>/")
            name = platform_name(platform)
            progress(f"warm: [{name}] {shown}")
            started = time.monotonic()
            code = run_go(config, args, env=platform_env(env, platform), cwd=cwd, stdout=go_stdout)
            step = Step(name, shown, round(time.monotonic() - started, 2), code)
            report.steps.append(step)
            outcome = "ok" if code == 0 else f"FAILED (exit {code})"
            progress(f"warm: [{name}] {shown}: {outcome} in {step.seconds:.1f}s")
    progress("warm: uploading to the shared dir")
    report.pending = sync_pending(config).pending
    index = Index(config.index_dir)
    try:
        after = index.counters()
    finally:
        index.close()
    report.uploaded = after.get("uploads_done", 0) - before.get("uploads_done", 0)
    report.uploaded_bytes = after.get("upload_bytes", 0) - before.get("upload_bytes", 0)
    return report


def pull(
    config: Config,
    *,
    platforms: Sequence[str],
    env: Mapping[str, str],
    cwd: str,
    progress: Callable[[int, int], None] | None = None,
) -> PullReport:
    """Copy into the local tier what the last builds of this workspace used (per platform),
    in parallel, at most ``prefetch_max_bytes``; the shared list first (the cluster's
    latest), else this node's."""
    config.require_shared_dir()
    store = open_tiered(config, reporter=Reporter(write=None))
    try:
        if not store.wait_shared(config.shared_timeout) or not store.shared_readable:
            raise UserError(f"cannot pull: {store.shared_problem}")
        log = UsageLog(store.local.index, store.shared)
        ids: list[str] = []
        lists = 0
        for platform in list(platforms) or [None]:
            key = workspace_key(cwd, platform_env(env, platform))
            try:
                used = log.from_share(key) or log.local(key)
            except OSError as exc:
                raise UserError(f"cannot read the used list on the share: {exc}") from None
            lists += used is not None
            ids += [action_id for action_id, _ in used or ()]
        prefetcher = Prefetcher(store, max_bytes=config.prefetch_max_bytes, workers=PULL_WORKERS)
        prefetcher.add(ids)
        while not prefetcher.wait(0.25):
            if progress:
                progress(prefetcher.considered, prefetcher.total)
        if progress and prefetcher.total:
            progress(prefetcher.total, prefetcher.total)
        counts = store.counters.snapshot()
        store.counters.flush(store.local.index)
        return PullReport(
            lists=lists,
            entries=prefetcher.total,
            fetched=counts.get("prefetched", 0),
            fetched_bytes=counts.get("prefetch_bytes", 0),
            over_budget=prefetcher.over_budget,
        )
    finally:
        store.close()
        store.local.index.close()
