"""go build through gocachemgr's GOCACHEPROG helper versus native go, side by side.

    python -m benchmarks.bench_cacheprog [--runs N] [--cold-runs N] [--quick] [--json OUT]

Scenarios (every build is `go build <packages>`, ``std`` unless --quick/--packages):

* warm: native go with its own GOCACHE (warmed once) vs ``gocachemgr go build``
  with a warmed local tier (no shared dir); alternating, medians; target <= 1.3x.
* cold: native go with an empty GOCACHE each run vs ``gocachemgr go build`` with
  an empty local dir each run (no shared dir); alternating; target <= 1.1x.
* extra rows, no target: a cold build with a shared dir configured (both tiers
  empty), and a "second node" (empty local dir, shared dir already filled). The
  shared dir is a LOCAL temp directory standing in for NFS: there is no NFS here,
  so these rows show the CPU/IO cost of the shared tier's code, not network latency.
* cacheprog peak RSS during a cold build: GOCACHEPROG points at a small wrapper
  that runs ``python -m gocachemgr.cacheprog`` as its child (inheriting stdin and
  stdout) and then records ``getrusage(RUSAGE_CHILDREN).ru_maxrss``; target < 150 MB.

Variants run in rotating order round by round, so slow phases of a shared, noisy
machine hit every variant alike; the tables report medians, min and max, the ratio
of medians and the median of per-round ratios. CPU seconds (user+sys of every
process of a build, go's orphaned helper included: this process is a child
subreaper) are reported too, being less sensitive to other load than wall time.
Nothing here binds a port or starts a server; everything lives in a temp dir.

By default the gocachemgr that Python imports (the editable working tree) is
measured, and the JSON lists its uncommitted product files. ``--git-rev REV``
instead extracts ``gocachemgr/`` at REV into the temp dir and puts it first on
PYTHONPATH for the CLI, the helper and this process, so that a tree others are
editing cannot change the code under test halfway through a run.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import fmt_met, log, ratio, rotate

# gocachemgr itself is imported only inside Bench, after --git-rev may have put a
# snapshot of the product first on sys.path.

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "benchmarks" / "results"
FULL_PACKAGES = ("std",)
QUICK_PACKAGES = ("fmt", "net/http")
WARM_TARGET = 1.3
COLD_TARGET = 1.1
RSS_TARGET_MB = 150.0
MIN_RUNS = 5
MIN_COLD_RUNS = 3
PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>

WRAPPER_SOURCE = '''\
"""GOCACHEPROG wrapper written by benchmarks/bench_cacheprog.py (benchmark only).

Usage: python wrapper.py OUT.json -- CMD ARGS...  The child inherits stdin,
stdout and stderr, so go talks to it exactly as it would without the wrapper;
afterwards the child's peak RSS and CPU times go to OUT.json.
"""
import json
import os
import resource
import subprocess
import sys
import time

out, sep, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
if sep != "--" or not argv:
    sys.exit("usage: wrapper.py OUT.json -- CMD ARGS...")
start = time.perf_counter()
code = subprocess.call(argv)
wall = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
report = {
    "maxrss_kb": usage.ru_maxrss,
    "utime_s": usage.ru_utime,
    "stime_s": usage.ru_stime,
    "wall_s": wall,
    "returncode": code,
}
with open(out + ".tmp", "w") as f:
    json.dump(report, f)
os.replace(out + ".tmp", out)
sys.exit(code if code >= 0 else 128 - code)
'''


class BenchError(Exception):
    """A build failed or the benchmark cannot go on; the message says which and why."""


# -- statistics and tables (pure functions, unit-tested) ------------------------------


def summarize(values: Sequence[float]) -> dict[str, float | int]:
    """n, median, min and max of a non-empty list of measurements."""
    if not values:
        raise ValueError("no measurements to summarize")
    return {
        "n": len(values),
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }



def paired_ratios(runs: Sequence[Run], baseline: Sequence[Run]) -> list[float]:
    """value/baseline for every round in which both scenarios ran."""
    base_by_round = {r.round: r.seconds for r in baseline}
    return [r.seconds / base_by_round[r.round] for r in runs if r.round in base_by_round]


def target_met(value: float | None, limit: float, *, strict: bool = False) -> bool | None:
    """value <= limit (value < limit when strict); None when there is no value."""
    if value is None:
        return None
    return value < limit if strict else value <= limit


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"



def format_time_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown table of timed scenarios.

    Each row: scenario, stats (``summarize`` output or None), ratio, paired
    (median per-round ratio), target (text), met (bool or None), cpu (median s),
    cpu_ratio (median CPU s vs the baseline's).
    """
    lines = [
        "| scenario | n | median s | min s | max s | ratio vs native (medians) "
        "| median per-round ratio | target | met? | median CPU s | CPU ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|",
    ]
    for row in rows:
        stats = row.get("stats") or {}
        lines.append(
            f"| {row['scenario']} | {stats.get('n', 0)} "
            f"| {_fmt(stats.get('median'), '.2f')} | {_fmt(stats.get('min'), '.2f')} "
            f"| {_fmt(stats.get('max'), '.2f')} | {_fmt(row.get('ratio'), '.3f', 'x')} "
            f"| {_fmt(row.get('paired'), '.3f', 'x')} | {row.get('target') or '-'} "
            f"| {fmt_met(row.get('met'))} | {_fmt(row.get('cpu'), '.1f')} "
            f"| {_fmt(row.get('cpu_ratio'), '.3f', 'x')} |"
        )
    return "\n".join(lines)


def format_rss_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown table of cacheprog peak RSS: scenario, rss_mb, cpu_s, build_s, target, met."""
    lines = [
        "| scenario | cacheprog peak RSS MB | cacheprog CPU s (user+sys) | build wall s "
        "| target | met? |",
        "|---|---:|---:|---:|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['scenario']} | {_fmt(row.get('rss_mb'), '.1f')} "
            f"| {_fmt(row.get('cpu_s'), '.1f')} | {_fmt(row.get('build_s'), '.1f')} "
            f"| {row.get('target') or '-'} | {fmt_met(row.get('met'))} |"
        )
    return "\n".join(lines)


# -- the wrapper that measures the helper's RSS ------------------------------------------


def write_rss_wrapper(directory: Path) -> Path:
    path = directory / "rss_wrapper.py"
    path.write_text(WRAPPER_SOURCE)
    return path


def go_quote(word: str) -> str:
    """Quote one word for GOCACHEPROG (go splits it with cmd/internal/quoted)."""
    if not any(c in word for c in " \t\n'\""):
        return word
    if "'" not in word:
        return f"'{word}'"
    if '"' not in word:
        return f'"{word}"'
    raise BenchError(f"cannot quote {word!r} for GOCACHEPROG")


def wrapper_argv(wrapper: Path, report: Path, child: Sequence[str]) -> list[str]:
    return [sys.executable, str(wrapper), str(report), "--", *child]


def read_rss_report(report: Path, timeout: float = 10.0) -> dict[str, Any]:
    """The wrapper's JSON (it is written before the wrapper exits; wait briefly anyway)."""
    deadline = time.monotonic() + timeout
    while not report.exists():
        if time.monotonic() > deadline:
            raise BenchError(f"the RSS wrapper wrote no report at {report}")
        time.sleep(0.02)
    return json.loads(report.read_text())


# -- processes -------------------------------------------------------------------------


def become_subreaper() -> bool:
    """Adopt orphaned descendants (go never waits for its GOCACHEPROG helper).

    Reaping them here puts their CPU time into RUSAGE_CHILDREN, so a build's CPU
    seconds include the helper. Linux only; False elsewhere.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def reap_orphans(timeout: float = 5.0) -> int:
    """Reap adopted descendants that have exited; wait up to ``timeout`` for live ones."""
    deadline = time.monotonic() + timeout
    reaped = 0
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped
        if pid:
            reaped += 1
            continue
        if time.monotonic() > deadline:
            log(f"warning: a descendant is still running {timeout:g}s after its build ended")
            return reaped
        time.sleep(0.01)


def _cpu_seconds(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime



@dataclass
class Run:
    scenario: str
    round: int
    seconds: float
    cpu_seconds: float
    load1_before: float
    order: int = 0
    info: dict[str, Any] = field(default_factory=dict)


def bench_env(
    root: Path, base: Mapping[str, str] | None = None, source_dir: Path | None = None
) -> dict[str, str]:
    """A clean Go environment under ``root`` (gocachemgr.sandbox.isolated_env).

    With ``source_dir`` every Python started with this environment imports
    gocachemgr from there (PYTHONPATH precedes the editable install's finder).
    """
    from gocachemgr.sandbox import isolated_env  # after --git-rev has set up sys.path

    env = isolated_env(root, base)
    if source_dir is not None:
        env["PYTHONPATH"] = str(source_dir)
    return env


def snapshot_source(rev: str, dest: Path) -> str:
    """Extract ``gocachemgr/`` as committed at ``rev`` into ``dest``; returns the commit id."""
    sha = _git("rev-parse", "--verify", f"{rev}^{{commit}}")
    if not sha:
        raise BenchError(f"--git-rev {rev!r} is not a commit of {REPO}")
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / "source.tar"
    with archive.open("wb") as f:
        proc = subprocess.run(
            ["git", "archive", "--format=tar", sha, "gocachemgr"], cwd=REPO, stdout=f,
            stderr=subprocess.PIPE, check=False,
        )
    if proc.returncode != 0:
        raise BenchError(f"git archive {sha} failed: {proc.stderr.decode(errors='replace')}")
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    archive.unlink()
    return sha


def imported_from(env: Mapping[str, str], cwd: Path) -> str:
    """Where a Python started with ``env`` in ``cwd`` imports gocachemgr from."""
    proc = subprocess.run(
        [sys.executable, "-c", "import gocachemgr; print(gocachemgr.__file__)"],
        env=dict(env), cwd=cwd, capture_output=True, text=True, check=False,
    )
    return proc.stdout.strip() or f"(import failed: {proc.stderr.strip()[-300:]})"


# -- machine description -------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / (1024 * 1024)
    except OSError:
        pass
    return None


def _git(*args: str) -> str:
    try:
        proc = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return ""
    return proc.stdout.strip()


def machine_info(go: str, env: Mapping[str, str]) -> dict[str, Any]:
    go_version = subprocess.run(
        [go, "version"], env=dict(env), capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "mem_total_gib": _mem_total_gib(),
        "go": go,
        "go_version": go_version,
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "git_head": _git("rev-parse", "HEAD"),
        "git_dirty_product_files_in_working_tree": _git(
            "status", "--porcelain", "--", "gocachemgr"
        ).splitlines(),
        "loadavg_start": os.getloadavg(),
    }


# -- the benchmark ---------------------------------------------------------------------------


class Bench:
    def __init__(
        self, root: Path, packages: Sequence[str], source_dir: Path | None = None
    ) -> None:
        self.root = root
        self.packages = list(packages)
        if source_dir is not None:
            sys.path.insert(0, str(source_dir))  # before the first gocachemgr import
        self.env = bench_env(root, source_dir=source_dir)
        self.workdir = root / "work"  # no go.mod: `go build std` needs none
        self.workdir.mkdir(parents=True, exist_ok=True)
        from gocachemgr.toolchain import find_go

        self.go = find_go(self._config(self.env), self.env)
        self.wrapper = write_rss_wrapper(root)
        self.runs: list[Run] = []
        self.subreaper = become_subreaper()

    @staticmethod
    def _config(env: Mapping[str, str]) -> Any:
        from gocachemgr.config import Config

        return Config.load(env=env)

    # environments and commands

    def native_env(self, gocache: Path) -> dict[str, str]:
        return {**self.env, "GOCACHE": str(gocache)}

    def gcm_env(self, local: Path, shared: Path | None) -> dict[str, str]:
        return {
            **self.env,
            "GOCACHEMGR_LOCAL_DIR": str(local),
            "GOCACHEMGR_SHARED_DIR": str(shared) if shared else "",
        }

    def native_argv(self) -> list[str]:
        return [self.go, "build", *self.packages]

    def gcm_argv(self, *args: str) -> list[str]:
        """``gocachemgr ARGS``, started as a user's console script would (a new Python)."""
        return [sys.executable, "-m", "gocachemgr", *args]

    # running

    def timed(
        self, scenario: str, argv: Sequence[str], env: Mapping[str, str], rnd: int, order: int = 0
    ) -> Run:
        os.sync()  # earlier runs' dirty pages should not be written back during this one
        load1 = os.getloadavg()[0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(
            list(argv), env=dict(env), cwd=self.workdir, capture_output=True, text=True,
            check=False,
        )
        seconds = time.perf_counter() - start
        reap_orphans()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise BenchError(
                f"{scenario} (round {rnd}): {' '.join(argv)} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout[-2000:]}\nstderr:\n{proc.stderr[-3000:]}"
            )
        run = Run(scenario, rnd, seconds, _cpu_seconds(after) - _cpu_seconds(before), load1, order)
        noise = [line for line in proc.stderr.splitlines() if line.strip()]
        if noise:
            run.info["stderr"] = noise[:20]
            log(f"  note: {scenario} printed on stderr: {noise[0][:200]}")
        self.runs.append(run)
        log(
            f"  {scenario:<18} round {rnd}: {seconds:8.2f} s wall, {run.cpu_seconds:8.1f} s CPU, "
            f"load {load1:.2f}"
        )
        return run

    def native(self, scenario: str, gocache: Path, rnd: int, order: int = 0) -> Run:
        gocache.mkdir(parents=True, exist_ok=True)
        return self.timed(scenario, self.native_argv(), self.native_env(gocache), rnd, order)

    def gcm(
        self, scenario: str, local: Path, shared: Path | None, rnd: int, order: int = 0
    ) -> Run:
        env = self.gcm_env(local, shared)
        return self.timed(scenario, self.gcm_argv("go", "build", *self.packages), env, rnd, order)

    def gcm_with_rss(self, scenario: str, local: Path, shared: Path | None) -> Run:
        """A build with GOCACHEPROG = the RSS wrapper around the helper the runner would start.

        The environment is exactly the runner's (``go_environment``); only GOCACHEPROG
        differs, and go is started directly (the `gocachemgr go` parent adds nothing
        to the helper's memory).
        """
        env = self.gcm_env(local, shared)
        env["PYTHONSAFEPATH"] = "1"  # as `python -m gocachemgr` sets it for go and the helper
        from gocachemgr.runner import go_environment

        config = self._config(env)
        go_env = go_environment(config, env)
        config.gocache_dir.mkdir(parents=True, exist_ok=True)
        report = self.root / f"rss-{scenario}.json"
        child = [sys.executable, "-m", "gocachemgr.cacheprog"]
        go_env["GOCACHEPROG"] = " ".join(
            go_quote(w) for w in wrapper_argv(self.wrapper, report, child)
        )
        run = self.timed(scenario, self.native_argv(), go_env, 0)
        data = read_rss_report(report)
        if data["returncode"] != 0:
            raise BenchError(f"{scenario}: the cacheprog helper exited {data['returncode']}")
        run.info["rss"] = data
        log(
            f"  {scenario}: cacheprog peak RSS {data['maxrss_kb'] / 1024:.1f} MB, "
            f"CPU {data['utime_s'] + data['stime_s']:.1f} s"
        )
        return run

    def gcm_cli_json(self, local: Path, shared: Path | None, *args: str) -> Any:
        proc = subprocess.run(
            self.gcm_argv(*args, "--json"), env=self.gcm_env(local, shared), cwd=self.workdir,
            capture_output=True, text=True, check=False,
        )
        reap_orphans()
        try:
            return json.loads(proc.stdout)
        except ValueError:
            raise BenchError(
                f"gocachemgr {' '.join(args)} --json exited {proc.returncode}: "
                f"{proc.stderr[-2000:]}"
            ) from None



def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


LABELS = {
    "warm_native": "warm `go build {pkgs}`: native go, own GOCACHE",
    "warm_gcm": "warm `gocachemgr go build {pkgs}`: local tier, no shared dir",
    "second_node": "[extra] second node: empty local dir, shared dir already filled "
    "(local temp dir standing in for NFS); ratio vs warm native",
    "cold_native": "cold `go build {pkgs}`: native go, empty GOCACHE",
    "cold_gcm": "cold `gocachemgr go build {pkgs}`: empty local dir, no shared dir",
    "cold_gcm_shared": "[extra] cold gocachemgr with a shared dir (local temp dir standing "
    "in for NFS, empty; uploads included)",
}


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    packages = tuple(args.packages.split()) if args.packages else (
        QUICK_PACKAGES if args.quick else FULL_PACKAGES
    )
    pkgs = " ".join(packages)
    base = Path(args.tmp_dir) if args.tmp_dir else None
    root = Path(tempfile.mkdtemp(prefix="gocachemgr-bench-", dir=base))
    started = datetime.now(UTC)
    log(f"benchmark root {root}; packages: {pkgs}; runs {args.runs}, cold runs {args.cold_runs}")
    source: dict[str, Any] = {"mode": "working tree (editable install)"}
    source_dir = None
    if args.git_rev:
        source_dir = root / "source"
        source = {"mode": "git snapshot", "rev": args.git_rev,
                  "commit": snapshot_source(args.git_rev, source_dir)}
    bench = Bench(root, packages, source_dir)
    import gocachemgr

    source["imported_by_benchmark"] = gocachemgr.__file__
    source["imported_by_builds"] = imported_from(bench.env, bench.workdir)
    if source_dir is not None and not all(
        str(v).startswith(str(source_dir))
        for v in (source["imported_by_benchmark"], source["imported_by_builds"])
    ):
        raise BenchError(f"the snapshot is not what gets imported: {source}")
    log(f"gocachemgr source: {source}")
    info = machine_info(bench.go, bench.env)
    info["source"] = source
    log(f"go: {info['go']} ({info['go_version']}); nproc {info['nproc']}; "
        f"load {info['loadavg_start']}")
    if not bench.subreaper:
        log("warning: cannot become a child subreaper: CPU seconds exclude go's helper")
    checks: dict[str, Any] = {}
    try:
        # 1. warm-ups (cold builds), each also an RSS measurement of the helper.
        log("warm-up: native GOCACHE")
        warm_native_cache = root / "warm-native" / "gocache"
        bench.native("warmup_native", warm_native_cache, 0)
        log("warm-up: gocachemgr local tier (through the RSS wrapper: local only)")
        warm_local = root / "warm-gcm"
        bench.gcm_with_rss("rss_cold_local", warm_local, None)
        log("fill the shared dir (through the RSS wrapper: cold, with a shared dir)")
        share = fresh(root / "share-filled")
        fill_node = root / "fill-node"
        bench.gcm_with_rss("rss_cold_shared", fill_node, share)
        checks["fill_node_stats_after_build"] = bench.gcm_cli_json(fill_node, share, "stats")
        checks["fill_node_sync"] = bench.gcm_cli_json(fill_node, share, "sync")
        shutil.rmtree(fill_node, ignore_errors=True)

        # 2. warm rounds: one untimed primer each, then alternate.
        log("warm primers (not counted)")
        bench.native("primer_native", warm_native_cache, 0)
        bench.gcm("primer_gcm", warm_local, None, 0)
        bench.gcm_cli_json(warm_local, None, "stats", "--zero")
        warm_variants = ["warm_native", "warm_gcm", "second_node"]
        for rnd in range(1, args.runs + 1):
            log(f"warm round {rnd}/{args.runs}")
            for order, variant in enumerate(rotate(warm_variants, rnd - 1)):
                if variant == "warm_native":
                    bench.native(variant, warm_native_cache, rnd, order)
                elif variant == "warm_gcm":
                    bench.gcm(variant, warm_local, None, rnd, order)
                else:
                    node = fresh(root / "second-node")
                    bench.gcm(variant, node, share, rnd, order)
                    if rnd == 1:
                        checks["second_node_stats_round1"] = bench.gcm_cli_json(
                            node, share, "stats"
                        )
                    shutil.rmtree(node, ignore_errors=True)
        checks["warm_gcm_stats"] = bench.gcm_cli_json(warm_local, None, "stats")

        # 3. cold rounds: fresh dirs every run, alternate.
        cold_variants = ["cold_native", "cold_gcm", "cold_gcm_shared"]
        for rnd in range(1, args.cold_runs + 1):
            log(f"cold round {rnd}/{args.cold_runs}")
            for order, variant in enumerate(rotate(cold_variants, rnd - 1)):
                where = fresh(root / "cold")
                if variant == "cold_native":
                    bench.native(variant, where / "gocache", rnd, order)
                elif variant == "cold_gcm":
                    bench.gcm(variant, where / "local", None, rnd, order)
                else:
                    bench.gcm(variant, where / "local", fresh(where / "share"), rnd, order)
                    if rnd == 1:
                        checks["cold_shared_stats_round1"] = bench.gcm_cli_json(
                            where / "local", where / "share", "stats"
                        )
                shutil.rmtree(where, ignore_errors=True)
    finally:
        if args.keep:
            log(f"keeping {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    info["loadavg_end"] = os.getloadavg()
    return build_report(args, packages, info, bench, checks, started)


def build_report(
    args: argparse.Namespace,
    packages: Sequence[str],
    info: dict[str, Any],
    bench: Bench,
    checks: dict[str, Any],
    started: datetime,
) -> dict[str, Any]:
    pkgs = " ".join(packages)
    by: dict[str, list[Run]] = {}
    for run in bench.runs:
        by.setdefault(run.scenario, []).append(run)

    def stats(name: str) -> dict[str, float | int] | None:
        runs = by.get(name)
        return summarize([r.seconds for r in runs]) if runs else None

    def cpu(name: str) -> float | None:
        runs = by.get(name)
        return statistics.median(r.cpu_seconds for r in runs) if runs else None

    def med(name: str) -> float | None:
        s = stats(name)
        return None if s is None else float(s["median"])

    def paired(name: str, base: str) -> float | None:
        values = paired_ratios(by.get(name, []), by.get(base, []))
        return statistics.median(values) if values else None

    rows: list[dict[str, Any]] = []
    spec = [
        ("warm_native", None, None),
        ("warm_gcm", "warm_native", WARM_TARGET),
        ("second_node", "warm_native", None),
        ("cold_native", None, None),
        ("cold_gcm", "cold_native", COLD_TARGET),
        ("cold_gcm_shared", "cold_native", None),
    ]
    for name, base, limit in spec:
        r = ratio(med(name), med(base)) if base else None
        rows.append(
            {
                "key": name,
                "scenario": LABELS[name].format(pkgs=pkgs),
                "stats": stats(name),
                "ratio": r,
                "paired": paired(name, base) if base else None,
                "target": f"<= {limit:.2f}x" if limit else None,
                "met": target_met(r, limit) if limit else None,
                "cpu": cpu(name),
                "cpu_ratio": ratio(cpu(name), cpu(base)) if base else None,
            }
        )

    rss_rows: list[dict[str, Any]] = []
    for name, label in (
        ("rss_cold_local", f"cold `go build {pkgs}`, local tier only"),
        ("rss_cold_shared", f"cold `go build {pkgs}`, with shared dir (local temp dir, not NFS)"),
    ):
        for run in by.get(name, []):
            data = run.info["rss"]
            rss_mb = data["maxrss_kb"] / 1024
            rss_rows.append(
                {
                    "key": name,
                    "scenario": label,
                    "rss_mb": rss_mb,
                    "cpu_s": data["utime_s"] + data["stime_s"],
                    "build_s": run.seconds,
                    "build_cpu_s": run.cpu_seconds,
                    "target": f"< {RSS_TARGET_MB:.0f} MB",
                    "met": target_met(rss_mb, RSS_TARGET_MB, strict=True),
                }
            )

    time_table = format_time_table(rows)
    rss_table = format_rss_table(rss_rows)
    return {
        "benchmark": "bench_cacheprog",
        "started_utc": started.isoformat(timespec="seconds"),
        "finished_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, "-m", "benchmarks.bench_cacheprog",
                             *sys.argv[1:]]),
        "quick": args.quick,
        "packages": list(packages),
        "runs": args.runs,
        "cold_runs": args.cold_runs,
        "machine": info,
        "subreaper": bench.subreaper,
        "shared_dir_note": "every shared dir is a local temp directory standing in for NFS; "
        "no NFS is involved",
        "targets": {"warm_ratio": WARM_TARGET, "cold_ratio": COLD_TARGET,
                    "cacheprog_rss_mb": RSS_TARGET_MB},
        "rows": rows,
        "rss": rss_rows,
        "checks": checks,
        "samples": [asdict(r) for r in bench.runs],
        "table_markdown": time_table,
        "rss_table_markdown": rss_table,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_cacheprog",
        description="Time go builds through gocachemgr against native go (see module doc).",
    )
    parser.add_argument("--runs", type=int, help="warm runs per variant (default 5; quick 3)")
    parser.add_argument(
        "--cold-runs", type=int, help="cold runs per variant (default 3; quick 1)"
    )
    parser.add_argument(
        "--quick", action="store_true",
        help=f"validate quickly: build {' '.join(QUICK_PACKAGES)} instead of std, fewer runs",
    )
    parser.add_argument("--json", dest="json_out", type=Path, help="where to write the results")
    parser.add_argument("--packages", help="override the packages built (space separated)")
    parser.add_argument("--tmp-dir", help="parent for the benchmark's temp dir (local disk)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir afterwards")
    parser.add_argument(
        "--git-rev", help="measure gocachemgr/ as committed at this revision (e.g. HEAD) "
        "instead of the working tree"
    )
    args = parser.parse_args(argv)
    if args.runs is None:
        args.runs = 3 if args.quick else MIN_RUNS
    if args.cold_runs is None:
        args.cold_runs = 1 if args.quick else MIN_COLD_RUNS
    if args.runs < 1 or args.cold_runs < 1:
        parser.error("--runs and --cold-runs must be at least 1")
    return args


def main(argv: Sequence[str] | None = None, out: Callable[[str], object] = print) -> int:
    args = parse_args(argv)
    if not args.quick and (args.runs < MIN_RUNS or args.cold_runs < MIN_COLD_RUNS):
        log(f"warning: fewer runs than the benchmark's minimum ({MIN_RUNS} warm, "
            f"{MIN_COLD_RUNS} cold): medians will be weak")
    try:
        report = run_benchmark(args)
    except BenchError as exc:
        log(f"FAILED: {exc}")
        return 1
    json_out = args.json_out or RESULTS_DIR / (
        f"bench-cacheprog-{'quick-' if args.quick else ''}"
        f"{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    )
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(report, indent=2) + "\n")
    machine = report["machine"]
    out(f"\n{machine['go_version']}, Python {machine['python']}, nproc {machine['nproc']}, "
        f"{machine['cpu_model']}; load avg start {machine['loadavg_start']}, "
        f"end {machine['loadavg_end']}")
    if args.quick:
        out("QUICK run (smaller workload): the targets are meant for `go build std`.")
    out("")
    out(report["table_markdown"])
    out("")
    out(report["rss_table_markdown"])
    out(f"\nShared dirs: {report['shared_dir_note']}.")
    out(f"Results: {json_out}")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
    sys.exit(130)
