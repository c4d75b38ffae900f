"""`gocachemgr build` no-op and content-key computation, measured side by side.

    python -m benchmarks.bench_build [--runs N] [--quick] [--json OUT]

Scenarios (variants of one scenario run in rotating order, round by round, so the
slow phases of a shared, loaded machine hit every variant alike; medians, min and
max are reported, never single timings):

1. No-op build of a large real program. ``gocachemgr build -o X cmd/go`` (run as
   users do: ``python -P -m gocachemgr build ...`` in a new process, cwd
   GOROOT/src/cmd, GOCACHEMGR_LOCAL_DIR in a temp dir warmed by one cold
   ``gocachemgr build``) against a plain ``go build -o Y cmd/go`` with a native
   GOCACHE warmed once. Every run writes a fresh output path. Target: ratio of
   medians <= 0.1. Extra rows, no target: the same no-op without a bytecode cache
   (this environment sets PYTHONDONTWRITEBYTECODE=1 and the working tree has no
   ``__pycache__``), and a bare ``python -P -c pass``. Where the no-op's time goes:
   a fresh process that times its imports and wraps the product's functions with
   timers, then runs ``Builder.build`` as the CLI does; and ``python -X importtime``.
   --quick builds cmd/gofmt instead (a cold cmd/go build takes minutes): its row
   has no target.
2. Content keys of a generated module: 200 packages x 50 files (10,000 .go files
   of about 4 KB) and a main package importing them all; modification times are
   set 60 s in the past (an edited tree is older than the racy window). In-process
   ``Builder.key`` (``KeyEngine.compute``) for ``gocachemgr build -o bin .``:
   (a) with a live watcher (``python -P -m gocachemgr watch ROOT`` subprocess on
       the same index, one compute to set the mark, then repeated computes of the
       unchanged tree); target <= 10 ms;
   (b) stat-only, warm memo, no watcher (own index); target <= 150 ms;
   (c) cold: the file memo's entries under the module root deleted before each
       run (toolchain entries kept), graph cache warm (go list is NOT run), page
       cache warm: "memo cold, page cache warm". Throughput (bytes of every file
       hashed / time) against a Python loop that reads the same files and hashes
       them with xxhash.xxh3_128, equally page-cache-warm; target >= 70 %.
   Where the time goes: the same timers around the product's functions, on extra
   runs after the timed ones, plus cProfile of one stat-only and one cold run.

Everything lives in a temp dir; the only long-lived child is the watcher, stopped
with SIGTERM at the end. The code measured is the gocachemgr Python imports (the
editable working tree); the JSON lists its uncommitted product files.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import inspect
import io
import json
import os
import platform
import pstats
import queue
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import fmt_met, log, ratio, rotate

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "benchmarks" / "results"

NOOP_RATIO_TARGET = 0.1
WATCH_TARGET_MS = 10.0
STAT_TARGET_MS = 150.0
COLD_TARGET = 0.70
FULL_RUNS = 15
QUICK_RUNS = 5
NOOP_PACKAGE = "cmd/go"
QUICK_NOOP_PACKAGE = "cmd/gofmt"
PACKAGES = 200
FILES_PER_PACKAGE = 50
FILE_BYTES = 4096
BACKDATE_S = 60
PRODUCT_PATH = ""  # set by --git-rev: a directory holding a snapshot of gocachemgr/
ATTRIBUTION_RUNS = 5

# Product functions timed (inclusive wall time, call count) to say where time goes.
# (module, qualified name as looked up at call time: a function imported into another
# module's namespace is wrapped where its caller finds it).
KEY_TARGETS: tuple[tuple[str, str], ...] = (
    ("gocachemgr.keys.identity", "ToolchainMemo.toolchain"),
    ("gocachemgr.keys.identity", "ToolchainMemo._remember"),
    ("gocachemgr.keys.contentkey", "KeyEngine._mark"),
    ("gocachemgr.keys.contentkey", "KeyEngine._watch_view"),
    ("gocachemgr.watch", "WatchState.watchers"),
    ("gocachemgr.watch", "WatchState.changes_since"),
    ("gocachemgr.watch", "WatchState._sync"),
    ("gocachemgr.keys.graph", "_decode"),
    ("gocachemgr.keys.contentkey", "resolve_closure"),
    ("gocachemgr.keys.graph", "graph_files"),
    ("gocachemgr.keys.graph", "graph_key"),
    ("gocachemgr.keys.contentkey", "KeyEngine._check"),
    ("gocachemgr.keys.memo", "FileMemo.load"),
    ("gocachemgr.keys.memo", "FileMemo.save"),
    ("gocachemgr.keys.memo", "digest_file"),
    ("gocachemgr.keys.memo", "go_header_digest"),
    ("gocachemgr.keys.contentkey", "KeyEngine._content_key"),
    ("gocachemgr.keys.contentkey", "vcs_stamp"),
    ("gocachemgr.keys.contentkey", "_git"),
    ("gocachemgr.keys.contentkey", "KeyEngine._save_mark"),
)
BUILD_TARGETS: tuple[tuple[str, str], ...] = (
    ("gocachemgr.build", "Builder.__init__"),
    ("gocachemgr.build", "Builder.build"),
    ("gocachemgr.build", "Builder.key"),
    ("gocachemgr.build", "output_plan"),
    ("gocachemgr.artifacts", "ArtifactCache.lookup"),
    ("gocachemgr.artifacts", "ArtifactCache.restore"),
    ("gocachemgr.store.atomic", "AtomicFile.copy_from"),
    ("gocachemgr.store.atomic", "AtomicFile.commit"),
    ("gocachemgr.build", "Builder.close"),
    *KEY_TARGETS,
)


class BenchError(Exception):
    """A command failed or the benchmark cannot go on; the message says which and why."""


# -- statistics and tables ----------------------------------------------------------------


def summarize(values: Sequence[float]) -> dict[str, float | int] | None:
    if not values:
        return None
    return {
        "n": len(values),
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None



def paired_ratios(values: Sequence[float], baseline: Sequence[float]) -> list[float]:
    """value/baseline per round (index i of both lists is round i)."""
    return [v / b for v, b in zip(values, baseline, strict=False) if b]


def target_met(value: float | None, limit: float, *, at_least: bool = False) -> bool | None:
    if value is None:
        return None
    return value >= limit if at_least else value <= limit


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "ms":
        return f"{value * 1e3:.1f} ms" if value < 10 else f"{value * 1e3:.0f} ms"
    if unit == "MB/s":
        return f"{value:.1f} MB/s"
    if unit == "x":
        return f"{value:.3f}x"
    if unit == "%":
        return f"{value * 100:.1f} %"
    return f"{value:g}"



def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown: scenario, n, median, min, max, CPU median, ratio, per-round ratio, target, met."""
    lines = [
        "| scenario | n | median | min | max | median CPU | vs baseline (medians) "
        "| median per-round ratio | target | met? |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in rows:
        stats = row.get("stats") or {}
        unit = row["unit"]
        ratio_unit = row.get("ratio_unit", "x")
        lines.append(
            f"| {row['scenario']} | {stats.get('n', 0)} | {_fmt(stats.get('median'), unit)} "
            f"| {_fmt(stats.get('min'), unit)} | {_fmt(stats.get('max'), unit)} "
            f"| {_fmt(row.get('cpu'), row.get('cpu_unit', unit))} "
            f"| {_fmt(row.get('ratio'), ratio_unit)} | {_fmt(row.get('paired'), ratio_unit)} "
            f"| {row.get('target') or '-'} | {fmt_met(row.get('met'))} |"
        )
    return "\n".join(lines)


def format_breakdown(title: str, items: Sequence[tuple[str, float | None, str]]) -> str:
    lines = [f"| {title} | median ms | note |", "|---|---:|---|"]
    for name, seconds, note in items:
        value = "-" if seconds is None else f"{seconds * 1e3:.1f}"
        lines.append(f"| {name} | {value} | {note} |")
    return "\n".join(lines)



# -- timers around product functions --------------------------------------------------------


def instrument(targets):  # type: ignore[no-untyped-def]
    """Wrap ``(module, qualname)`` functions with timers; return (totals, undo).

    totals maps "module.qualname" to [inclusive seconds, calls]. Self-contained
    (its source is also sent to a fresh process), hence the local imports.
    """
    import functools
    import importlib
    import inspect as _inspect
    import time as _time

    totals = {}
    undo = []
    for module_name, qualname in targets:
        try:
            owner = importlib.import_module(module_name)
            *parents, name = qualname.split(".")
            for parent in parents:
                owner = getattr(owner, parent)
            original = _inspect.getattr_static(owner, name)
        except (ImportError, AttributeError):
            continue  # the product changed under us: time what still exists
        if not callable(original):
            continue
        label = f"{module_name.rsplit('.', 1)[-1]}.{qualname}"

        def wrapper(*args, __original=original, __label=label, **kwargs):  # type: ignore[no-untyped-def]
            start = _time.perf_counter()
            try:
                return __original(*args, **kwargs)
            finally:
                entry = totals.setdefault(__label, [0.0, 0])
                entry[0] += _time.perf_counter() - start
                entry[1] += 1

        functools.update_wrapper(wrapper, original)
        setattr(owner, name, wrapper)
        undo.append((owner, name, original))

    def restore():  # type: ignore[no-untyped-def]
        for owner_, name_, original_ in reversed(undo):
            setattr(owner_, name_, original_)

    return totals, restore


PHASE_SCRIPT = """\
import time
_t0 = time.perf_counter()
import gocachemgr.cli  # what `python -m gocachemgr` imports before dispatching
_t1 = time.perf_counter()
import gocachemgr.build  # what the `build` command imports
_t2 = time.perf_counter()
import json
import os
import sys

{instrument}

totals, _ = instrument({targets!r})
from gocachemgr.config import Config
t = time.perf_counter()
config = Config.load()
builder = gocachemgr.build.Builder(config, os.environ, os.getcwd(), note=lambda m: None)
t_open = time.perf_counter() - t
t = time.perf_counter()
outcome = builder.build(sys.argv[1:])
t_build = time.perf_counter() - t
t = time.perf_counter()
builder.close()
t_close = time.perf_counter() - t
print(json.dumps({{
    "status": outcome.status,
    "module": os.path.dirname(gocachemgr.__file__),
    "phases": {{
        "import gocachemgr.cli": _t1 - _t0,
        "import gocachemgr.build": _t2 - _t1,
        "Config.load + Builder()": t_open,
        "Builder.build": t_build,
        "Builder.close": t_close,
    }},
    "functions": totals,
}}))
"""


def phase_script() -> str:
    return PHASE_SCRIPT.format(
        instrument=inspect.getsource(instrument), targets=list(BUILD_TARGETS)
    )


def median_functions(samples: Sequence[Mapping[str, Sequence[float]]]) -> dict[str, Any]:
    """Per function: median inclusive seconds and median calls over the samples
    (a function absent from a sample counts as 0 there)."""
    names = sorted({name for sample in samples for name in sample})
    result = {}
    for name in names:
        seconds = [sample[name][0] if name in sample else 0.0 for sample in samples]
        calls = [sample[name][1] if name in sample else 0 for sample in samples]
        result[name] = {"median_s": statistics.median(seconds), "calls": statistics.median(calls)}
    return dict(sorted(result.items(), key=lambda kv: -kv[1]["median_s"]))


def format_functions(functions: Mapping[str, Mapping[str, float]], limit: int = 14) -> str:
    lines = ["| function (inclusive, nested) | median ms | calls |", "|---|---:|---:|"]
    for name, data in list(functions.items())[:limit]:
        lines.append(f"| `{name}` | {data['median_s'] * 1e3:.1f} | {data['calls']:g} |")
    return "\n".join(lines)


# -- environment and processes --------------------------------------------------------------



def base_env(tmp: Path) -> dict[str, str]:
    """Isolated homes and Go settings; the caller adds GOCACHE or GOCACHEMGR_LOCAL_DIR."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GOCACHEMGR_", "GO")) and k not in {"CGO_ENABLED", "PYTHONPATH"}
    }
    if PRODUCT_PATH:
        env["PYTHONPATH"] = PRODUCT_PATH  # --git-rev: the snapshot, not the working tree
    home = tmp / "home"
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_CONFIG_HOME=str(home / ".config"),
        GOPATH=str(tmp / "gopath"),
        GOPROXY="off",
        GOSUMDB="off",
        GOTOOLCHAIN="local",
        GOTELEMETRY="off",
    )
    return env


def with_bytecode_cache(env: Mapping[str, str], pycache: Path) -> dict[str, str]:
    """Python as installed by pip (bytecode cached), without writing into the repo."""
    result = dict(env)
    result.pop("PYTHONDONTWRITEBYTECODE", None)
    result["PYTHONPYCACHEPREFIX"] = str(pycache)
    return result


def without_bytecode_cache(env: Mapping[str, str], empty: Path) -> dict[str, str]:
    """Every import compiles its source (as with PYTHONDONTWRITEBYTECODE=1 and no pyc)."""
    result = dict(env)
    result["PYTHONDONTWRITEBYTECODE"] = "1"
    result["PYTHONPYCACHEPREFIX"] = str(empty)
    return result


def gocachemgr_argv(*args: str) -> list[str]:
    return [sys.executable, "-P", "-m", "gocachemgr", *args]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_run(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, timeout: float = 1800
) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """(wall s, CPU s of the process tree it waited for, the completed process)."""
    cpu0 = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.run(
        list(argv), env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    wall = time.perf_counter() - start
    cpu = _children_cpu() - cpu0
    if proc.returncode != 0:
        raise BenchError(
            f"{' '.join(argv)} exited {proc.returncode}\nstdout:\n{proc.stdout[-2000:]}\n"
            f"stderr:\n{proc.stderr[-2000:]}"
        )
    return wall, cpu, proc


def git_info() -> dict[str, Any]:
    def git(*args: str) -> str:
        proc = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
        return proc.stdout.strip() if proc.returncode == 0 else ""

    return {
        "head": git("rev-parse", "HEAD"),
        "uncommitted_product_files": git("status", "--porcelain", "--", "gocachemgr").splitlines(),
    }


def machine_info(go: str) -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gb = None
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    go_version = subprocess.run([go, "version"], capture_output=True, text=True).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "mem_gb": mem_gb,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "go": go_version,
        "tmp_fs": _filesystem(tempfile.gettempdir()),
    }


def _filesystem(path: str) -> str:
    best = ("", "?")
    with contextlib.suppress(OSError), open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 3 or len(parts[1]) < len(best[0]):
                continue
            if path == parts[1] or path.startswith(parts[1].rstrip("/") + "/"):
                best = (parts[1], parts[2])
    return f"{best[1]} ({best[0]})"


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


# -- scenario 1: no-op build of a large program --------------------------------------------


def noop_scenario(tmp: Path, go: str, package: str, runs: int) -> dict[str, Any]:
    goroot = subprocess.run(
        [go, "env", "GOROOT"], capture_output=True, text=True, check=True
    ).stdout.strip()
    cwd = Path(goroot) / "src" / "cmd"
    env = base_env(tmp / "noop")
    native_env = {**env, "GOCACHE": str(tmp / "noop" / "native-gocache")}
    ours_env = with_bytecode_cache(
        {**env, "GOCACHEMGR_LOCAL_DIR": str(tmp / "noop" / "local")}, tmp / "noop" / "pycache"
    )
    nopyc_env = without_bytecode_cache(ours_env, tmp / "noop" / "pycache-never-written")
    out = tmp / "noop" / "out"
    out.mkdir(parents=True)
    counter = iter(range(1_000_000))

    def fresh() -> str:
        return str(out / f"bin-{next(counter)}")

    log(f"no-op: warming a native GOCACHE with go build {package} (cold build)")
    wall, cpu, _ = timed_run([go, "build", "-o", fresh(), package], env=native_env, cwd=cwd)
    warm = {"native_cold_s": wall, "native_cold_cpu_s": cpu}
    log(f"  native cold build {wall:.1f} s; warming gocachemgr (cold gocachemgr build)")
    wall, cpu, _ = timed_run(
        gocachemgr_argv("build", "-o", fresh(), package), env=ours_env, cwd=cwd
    )
    warm.update(gocachemgr_cold_s=wall, gocachemgr_cold_cpu_s=cpu)
    log(f"  gocachemgr cold build {wall:.1f} s; checking the next build is a hit")
    _, _, proc = timed_run(
        gocachemgr_argv("build", "-v", "-o", fresh(), package), env=ours_env, cwd=cwd
    )
    if "local hit" not in proc.stderr:
        raise BenchError(f"the second gocachemgr build was not a local hit:\n{proc.stderr[-2000:]}")
    timed_run(gocachemgr_argv("build", "-o", fresh(), package), env=nopyc_env, cwd=cwd)
    _clear(out)

    script = phase_script()
    variants: dict[str, Callable[[], list[str]]] = {
        "native": lambda: [go, "build", "-o", fresh(), package],
        "gocachemgr": lambda: gocachemgr_argv("build", "-o", fresh(), package),
        "gocachemgr-nopyc": lambda: gocachemgr_argv("build", "-o", fresh(), package),
        "python": lambda: [sys.executable, "-P", "-c", "pass"],
        "phases": lambda: [sys.executable, "-P", "-c", script, "-o", fresh(), package],
    }
    envs = {
        "native": native_env,
        "gocachemgr": ours_env,
        "gocachemgr-nopyc": nopyc_env,
        "python": ours_env,
        "phases": ours_env,
    }
    walls: dict[str, list[float]] = {name: [] for name in variants}
    cpus: dict[str, list[float]] = {name: [] for name in variants}
    phase_samples: list[dict[str, Any]] = []
    for round_no in range(runs):
        for name in rotate(list(variants), round_no):
            wall, cpu, proc = timed_run(variants[name](), env=envs[name], cwd=cwd)
            walls[name].append(wall)
            cpus[name].append(cpu)
            if name == "phases":
                sample = json.loads(proc.stdout)
                if sample["status"] != "hit-local":
                    raise BenchError(f"instrumented no-op was not a local hit: {sample['status']}")
                if PRODUCT_PATH and not sample["module"].startswith(PRODUCT_PATH):
                    raise BenchError(f"the child imported gocachemgr from {sample['module']}")
                phase_samples.append(sample)
            _clear(out)
        log(
            f"  no-op round {round_no + 1}/{runs}: native {walls['native'][-1]:.2f} s, "
            f"gocachemgr {walls['gocachemgr'][-1]:.3f} s (load {loadavg()})"
        )

    importtime = importtime_runs(ours_env, cwd, fresh, package, min(runs, 3))
    _clear(out)
    stats = json.loads(
        timed_run(gocachemgr_argv("stats", "--json"), env=ours_env, cwd=cwd)[2].stdout
    )
    if stats.get("builds_miss") != 1:  # the warm-up's; every timed no-op must be a hit
        raise BenchError(f"some timed gocachemgr builds were not local hits: {stats}")
    return {
        "package": package,
        "cwd": str(cwd),
        "warm_up": warm,
        "walls": walls,
        "cpus": cpus,
        "phases": phase_samples,
        "importtime": importtime,
        "counters": stats,
    }


def _clear(directory: Path) -> None:
    for entry in directory.iterdir():
        entry.unlink()


def importtime_runs(
    env: Mapping[str, str], cwd: Path, fresh: Callable[[], str], package: str, runs: int
) -> dict[str, Any]:
    """Median self and cumulative import time per module over ``runs`` no-op builds."""
    self_us: dict[str, list[int]] = {}
    top_us: dict[str, list[int]] = {}  # top-level imports: together, all import time
    for _ in range(runs):
        argv = [sys.executable, "-P", "-X", "importtime", "-m", "gocachemgr"]
        _, _, proc = timed_run([*argv, "build", "-o", fresh(), package], env=env, cwd=cwd)
        for line in proc.stderr.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            own, cumulative, raw = line.removeprefix("import time:").split("|", 2)
            name = raw.strip()
            self_us.setdefault(name, []).append(int(own))
            if not raw.removeprefix(" ").startswith(" "):  # nested imports are indented
                top_us.setdefault(name, []).append(int(cumulative))
    top_level = {name: statistics.median(values) for name, values in top_us.items()}
    by_self = sorted(
        ((name, statistics.median(values)) for name, values in self_us.items()),
        key=lambda kv: -kv[1],
    )
    return {
        "runs": runs,
        "total_top_level_ms": sum(top_level.values()) / 1e3,
        "top_level_ms": {k: v / 1e3 for k, v in sorted(top_level.items(), key=lambda kv: -kv[1])},
        "top_self_ms": {name: us / 1e3 for name, us in by_self[:15]},
    }


def noop_rows(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    walls, cpus = result["walls"], result["cpus"]
    package = result["package"]
    native = median(walls["native"])
    evaluated = package == NOOP_PACKAGE

    def row(name: str, scenario: str, target: str | None = None) -> dict[str, Any]:
        r = ratio(median(walls[name]), native)
        return {
            "scenario": scenario,
            "unit": "s",
            "stats": summarize(walls[name]),
            "cpu": median(cpus[name]),
            "ratio": None if name == "native" else r,
            "paired": None
            if name == "native"
            else median(paired_ratios(walls[name], walls["native"])),
            "cpu_ratio": ratio(median(cpus[name]), median(cpus["native"])),
            "target": target,
            "met": target_met(r, NOOP_RATIO_TARGET) if target and evaluated else None,
        }

    return [
        row("native", f"`go build -o Y {package}`, warm native GOCACHE (baseline)"),
        row(
            "gocachemgr",
            f"`gocachemgr build -o X {package}` no-op (local hit)",
            f"<= {NOOP_RATIO_TARGET:.2f}x" if evaluated else f"(target is for {NOOP_PACKAGE})",
        ),
        row("gocachemgr-nopyc", "same, no bytecode cache (PYTHONDONTWRITEBYTECODE=1)"),
        row("python", "`python -P -c pass` (interpreter start-up)"),
    ]


def noop_breakdown(result: Mapping[str, Any]) -> dict[str, Any]:
    samples = result["phases"]
    phases = {
        name: statistics.median(s["phases"][name] for s in samples) for name in samples[0]["phases"]
    }
    functions = median_functions([s["functions"] for s in samples])
    return {
        "python_startup_s": median(result["walls"]["python"]),
        "gocachemgr_noop_s": median(result["walls"]["gocachemgr"]),
        "phases_s": phases,
        "functions": functions,
    }


# -- scenario 2: content keys of a generated 10,000-file module ------------------------------


def generate_module(root: Path, packages: int, files: int, file_bytes: int) -> tuple[int, int]:
    """A module with ``packages`` x ``files`` Go files and a main importing every package.

    Returns (files written, bytes written). mtimes are set BACKDATE_S in the past.
    """
    root.mkdir(parents=True)
    written: list[Path] = []
    (root / "go.mod").write_text("module example.com/bench\n\ngo 1.24\n")
    written.append(root / "go.mod")
    for i in range(packages):
        directory = root / f"p{i:03d}"
        directory.mkdir()
        for j in range(files):
            parts = [
                f"// Package p{i:03d} is generated by benchmarks/bench_build.py.\n"
                f'package p{i:03d}\n\nimport (\n\t"strconv"\n\t"strings"\n)\n'
            ]
            size, k = len(parts[0]), 0
            while size < file_bytes:
                func = (
                    f"\n// F{j}x{k} joins its argument {k} times with a separator.\n"
                    f"func F{j}x{k}(s string, n int) string {{\n"
                    f"\tparts := make([]string, 0, {k + 1})\n"
                    f"\tfor i := 0; i < {k + 1}; i++ {{\n"
                    f"\t\tparts = append(parts, s+strconv.Itoa(n+i))\n"
                    f"\t}}\n"
                    f'\treturn strings.Join(parts, "-{i}-{j}-")\n'
                    f"}}\n"
                )
                parts.append(func)
                size += len(func)
                k += 1
            path = directory / f"f{j:02d}.go"
            path.write_text("".join(parts))
            written.append(path)
    imports = "".join(f'\t_ "example.com/bench/p{i:03d}"\n' for i in range(packages))
    (root / "main.go").write_text(f"package main\n\nimport (\n{imports})\n\nfunc main() {{}}\n")
    written.append(root / "main.go")
    past = time.time_ns() - BACKDATE_S * 1_000_000_000
    total = 0
    for path in written:
        os.utime(path, ns=(past, past))
        total += path.stat().st_size
    return len(written), total


def read_and_hash(paths: Sequence[str]) -> int:
    """The baseline: read every file and hash it with xxh3-128, in one Python loop."""
    import xxhash

    total = 0
    for path in paths:
        h = xxhash.xxh3_128()
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            while chunk := os.read(fd, 1 << 20):
                h.update(chunk)
                total += len(chunk)
        finally:
            os.close(fd)
        h.digest()
    return total


def forget_files_under(index: Any, root: str) -> int:
    """Delete the file memo's entries for paths under ``root``: the memo is cold there."""
    db = index.env.open_db(b"files")
    prefix = os.fsencode(root.rstrip("/") + "/")
    deleted = 0
    with index.env.begin(write=True, db=db) as txn:
        cursor = txn.cursor()
        if cursor.set_range(prefix):
            while cursor.key().startswith(prefix):
                if not cursor.delete():
                    break
                deleted += 1
    return deleted


class Watcher:
    """``gocachemgr watch ROOT`` as a child process, stopped with SIGTERM."""

    def __init__(self, root: Path, env: Mapping[str, str]) -> None:
        self.proc = subprocess.Popen(
            gocachemgr_argv("watch", str(root)),
            env=dict(env),
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_ready(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise BenchError(
                    f"the watcher did not say 'watching' within {timeout:g}s"
                ) from None
            if line is None:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise BenchError(f"the watcher exited {self.proc.wait()}: {err.strip()}")
            if line.startswith("watching"):
                return line.strip()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.contextmanager
def quiet_gc() -> Iterator[None]:
    gc.collect()
    yield


def key_scenario(tmp: Path, runs: int) -> dict[str, Any]:
    from gocachemgr.build import Builder
    from gocachemgr.config import Config
    from gocachemgr.keys.flags import parse_build_args

    root = tmp / "keys" / "module"
    log(f"keys: generating {PACKAGES} x {FILES_PER_PACKAGE} Go files in {root}")
    start = time.perf_counter()
    nfiles, nbytes = generate_module(root, PACKAGES, FILES_PER_PACKAGE, FILE_BYTES)
    log(f"  {nfiles} files, {nbytes / 1e6:.1f} MB in {time.perf_counter() - start:.1f} s")
    root_real = os.path.realpath(root)
    env = base_env(tmp / "keys")
    build_args = parse_build_args(["-o", str(tmp / "keys" / "bin"), "."])

    def builder_for(name: str) -> tuple[Builder, dict[str, str]]:
        variant_env = {**env, "GOCACHEMGR_LOCAL_DIR": str(tmp / "keys" / f"local-{name}")}
        config = Config.load(env=variant_env)
        return Builder(config, variant_env, root_real, note=lambda _m: None), variant_env

    builders: dict[str, Builder] = {}
    watcher: Watcher | None = None
    try:
        for name in ("stat", "cold", "watch"):
            builders[name], variant_env = builder_for(name)
            start = time.perf_counter()
            first = builders[name].key(build_args)
            log(
                f"  {name}: first key (go list ran: {first.ran_go_list}, hashed "
                f"{first.files_hashed}) in {time.perf_counter() - start:.1f} s"
            )
            if name == "watch":
                watcher = Watcher(root, variant_env)
                log(f"  {watcher.wait_ready(60)}")
                builders[name].key(build_args)  # sets this workspace's mark with the watcher live
        key = first.key
        closure = first.closure
        paths = list(
            dict.fromkeys(
                closure.module_files
                + [path for p in closure.packages if p.local for path in p.source_paths()]
            )
        )
        hashed_bytes = sum(os.path.getsize(p) for p in paths)
        read_and_hash(paths)  # page cache warm for the baseline too (it is already)

        def run_watch() -> tuple[float, float, dict[str, Any]]:
            return _timed_key(builders["watch"], build_args)

        def run_stat() -> tuple[float, float, dict[str, Any]]:
            return _timed_key(builders["stat"], build_args)

        def run_cold() -> tuple[float, float, dict[str, Any]]:
            forget_files_under(builders["cold"].index, root_real)
            return _timed_key(builders["cold"], build_args)

        def run_baseline() -> tuple[float, float, dict[str, Any]]:
            with quiet_gc():
                cpu0, start = time.process_time(), time.perf_counter()
                total = read_and_hash(paths)
                wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
            return wall, cpu, {"bytes": total}

        variants: dict[str, Callable[[], tuple[float, float, dict[str, Any]]]] = {
            "watch": run_watch,
            "stat": run_stat,
            "cold": run_cold,
            "baseline": run_baseline,
        }
        walls: dict[str, list[float]] = {name: [] for name in variants}
        cpus: dict[str, list[float]] = {name: [] for name in variants}
        details: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
        for name in ("watch", "stat", "cold"):  # one untimed run each
            variants[name]()
        for round_no in range(runs):
            for name in rotate(list(variants), round_no):
                wall, cpu, info = variants[name]()
                if name != "baseline" and info["key"] != key:
                    raise BenchError(f"{name}: key {info['key']} != {key} for an unchanged tree")
                walls[name].append(wall)
                cpus[name].append(cpu)
                details[name].append(info)
            log(
                f"  keys round {round_no + 1}/{runs}: watch {walls['watch'][-1] * 1e3:.1f} ms, "
                f"stat {walls['stat'][-1] * 1e3:.0f} ms, cold {walls['cold'][-1] * 1e3:.0f} ms, "
                f"baseline {walls['baseline'][-1] * 1e3:.0f} ms (load {loadavg()})"
            )

        log("  attribution runs (timers around product functions, cProfile)")
        attribution: dict[str, Any] = {}
        for name in ("watch", "stat", "cold"):
            samples = []
            for _ in range(ATTRIBUTION_RUNS):
                totals, restore = instrument(KEY_TARGETS)
                try:
                    wall, _, _ = variants[name]()
                finally:
                    restore()
                samples.append({**totals, "(total)": [wall, 1]})
            attribution[name] = median_functions(samples)
        profiles = {name: _profile(variants[name]) for name in ("stat", "cold")}
    finally:
        if watcher is not None:
            watcher.stop()
        for builder in builders.values():
            builder.close()
    return {
        "root": root_real,
        "files_generated": nfiles,
        "bytes_generated": nbytes,
        "files_keyed": len(paths),
        "bytes_keyed": hashed_bytes,
        "key": key,
        "walls": walls,
        "cpus": cpus,
        "details": {name: _detail_summary(values) for name, values in details.items()},
        "attribution": attribution,
        "profiles": profiles,
    }


def _timed_key(builder: Any, build_args: Any) -> tuple[float, float, dict[str, Any]]:
    with quiet_gc():
        cpu0, start = time.process_time(), time.perf_counter()
        result = builder.key(build_args)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
    return (
        wall,
        cpu,
        {
            "key": result.key,
            "ran_go_list": result.ran_go_list,
            "files_hashed": result.files_hashed,
            "files_statted": result.files_statted,
        },
    )


def _detail_summary(values: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for field in ("ran_go_list", "files_hashed", "files_statted", "bytes"):
        seen = sorted({str(v[field]) for v in values if field in v})
        if seen:
            summary[field] = seen
    return summary


def _profile(run: Callable[[], Any], limit: int = 12) -> list[dict[str, Any]]:
    """cProfile of one run: the functions with the most own time (attribution only)."""
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        run()
    finally:
        profiler.disable()
    stats = pstats.Stats(profiler, stream=io.StringIO())
    rows = []
    for (filename, line, func), (_cc, calls, own, cumulative, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        where = func if filename == "~" else f"{Path(filename).name}:{line}({func})"
        rows.append({"function": where, "calls": calls, "own_s": own, "cumulative_s": cumulative})
    rows.sort(key=lambda r: -r["own_s"])
    return rows[:limit]


def key_rows(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    walls, cpus = result["walls"], result["cpus"]
    mb = result["bytes_keyed"] / 1e6
    cold_mbps = [mb / w for w in walls["cold"]]
    base_mbps = [mb / w for w in walls["baseline"]]
    watch_ms = median(walls["watch"])
    stat_ms = median(walls["stat"])
    throughput = ratio(median(cold_mbps), median(base_mbps))
    return [
        {
            "scenario": "key, live watcher, unchanged tree",
            "unit": "ms",
            "stats": summarize(walls["watch"]),
            "cpu": median(cpus["watch"]),
            "target": f"<= {WATCH_TARGET_MS:g} ms",
            "met": target_met(watch_ms, WATCH_TARGET_MS / 1e3),
        },
        {
            "scenario": "key, stat-only, warm memo, no watcher",
            "unit": "ms",
            "stats": summarize(walls["stat"]),
            "cpu": median(cpus["stat"]),
            "target": f"<= {STAT_TARGET_MS:g} ms",
            "met": target_met(stat_ms, STAT_TARGET_MS / 1e3),
        },
        {
            "scenario": "key, cold memo, graph cached (time)",
            "unit": "ms",
            "stats": summarize(walls["cold"]),
            "cpu": median(cpus["cold"]),
        },
        {
            "scenario": "baseline: read + xxh3_128 loop (time)",
            "unit": "ms",
            "stats": summarize(walls["baseline"]),
            "cpu": median(cpus["baseline"]),
        },
        {
            "scenario": f"key, cold memo: throughput over {mb:.1f} MB",
            "unit": "MB/s",
            "stats": summarize(cold_mbps),
            "cpu": mb / median(cpus["cold"]) if cpus["cold"] else None,
            "cpu_unit": "MB/s",
            "ratio": throughput,
            "ratio_unit": "%",
            "paired": median(paired_ratios(cold_mbps, base_mbps)),
            "target": f">= {COLD_TARGET * 100:.0f} % of baseline",
            "met": target_met(throughput, COLD_TARGET, at_least=True),
        },
        {
            "scenario": "baseline: read + xxh3_128 loop throughput",
            "unit": "MB/s",
            "stats": summarize(base_mbps),
            "cpu": mb / median(cpus["baseline"]) if cpus["baseline"] else None,
            "cpu_unit": "MB/s",
        },
    ]


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_build",
        description="gocachemgr build no-op vs warm go build; content-key timings.",
    )
    parser.add_argument("--runs", type=int, default=None, help="rounds per scenario")
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_RUNS} rounds, no-op on {QUICK_NOOP_PACKAGE}"
    )
    parser.add_argument("--json", type=Path, default=None, help="write results here")
    parser.add_argument("--noop-package", default=None, help="package for the no-op scenario")
    parser.add_argument("--skip-noop", action="store_true", help="only the key scenarios")
    parser.add_argument("--skip-keys", action="store_true", help="only the no-op scenario")
    parser.add_argument(
        "--git-rev",
        metavar="REV",
        help="measure gocachemgr/ as committed at REV (extracted into the temp dir and put "
        "first on the path of this process and every child) instead of the working tree",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    runs = args.runs or (QUICK_RUNS if args.quick else FULL_RUNS)
    if runs < 1:
        raise SystemExit("--runs must be at least 1")
    package = args.noop_package or (QUICK_NOOP_PACKAGE if args.quick else NOOP_PACKAGE)
    out_json = args.json or RESULTS_DIR / f"bench-build-{'quick' if args.quick else 'full'}.json"

    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp_name:
        tmp = Path(tmp_name)
        product = "working tree"
        if args.git_rev:
            product = snapshot_product(args.git_rev, tmp / "product")
        import gocachemgr
        from gocachemgr.config import Config
        from gocachemgr.toolchain import find_go

        go = find_go(Config.load())
        report: dict[str, Any] = {
            "command": " ".join(["python -m benchmarks.bench_build", *(argv or sys.argv[1:])]),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine_info(go),
            "git": git_info(),
            "product": {"measured": product, "imported_from": os.path.dirname(gocachemgr.__file__)},
            "runs": runs,
            "load_before": loadavg(),
        }
        if not args.skip_noop:
            noop = noop_scenario(tmp, go, package, runs)
            report["noop"] = noop
            report["noop_breakdown"] = noop_breakdown(noop)
            rows += noop_rows(noop)
        if not args.skip_keys:
            keys = key_scenario(tmp, runs)
            report["keys"] = keys
            rows += key_rows(keys)
        shutil.rmtree(tmp, ignore_errors=True)
    report["rows"] = rows
    report["load_after"] = loadavg()
    report["elapsed_s"] = time.perf_counter() - started
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(render(report))
    log(f"wrote {out_json} in {report['elapsed_s']:.0f} s")
    return 0


def snapshot_product(rev: str, dest: Path) -> str:
    """Extract gocachemgr/ at ``rev`` into ``dest`` and put it first on every path."""
    global PRODUCT_PATH
    if "gocachemgr" in sys.modules:
        raise BenchError("gocachemgr was imported before the snapshot was put on the path")
    sha = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--verify", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    if not sha:
        raise BenchError(f"--git-rev {rev}: not a commit")
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", sha, "gocachemgr"],
        capture_output=True,
        check=True,
    ).stdout
    dest.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    PRODUCT_PATH = str(dest)
    sys.path.insert(0, PRODUCT_PATH)
    return f"git {rev} ({sha})"


def render(report: Mapping[str, Any]) -> str:
    machine = report["machine"]
    parts = [
        f"{machine['cpu']}, {machine['cores']} cores, {machine['mem_gb']} GB, "
        f"Linux {machine['kernel']}, Python {machine['python']}, {machine['go']}, "
        f"temp dir on {machine['tmp_fs']}; load {report['load_before']} -> "
        f"{report['load_after']}; {report['runs']} rounds; gocachemgr measured: "
        f"{report['product']['measured']}",
        "",
        format_table(report["rows"]),
    ]
    breakdown = report.get("noop_breakdown")
    if breakdown:
        items: list[tuple[str, float | None, str]] = [
            (
                "python -P -c pass (interpreter start-up)",
                breakdown["python_startup_s"],
                "separate process",
            ),
        ]
        items += [
            (name, value, "in-process timer") for name, value in breakdown["phases_s"].items()
        ]
        inner = sum(breakdown["phases_s"].values())
        items.append(("sum of the in-process phases", inner, "medians, added"))
        items.append(("gocachemgr no-op, whole process", breakdown["gocachemgr_noop_s"], "wall"))
        parts += ["", format_breakdown("no-op phase", items), ""]
        parts.append(format_functions(breakdown["functions"]))
        imports = report["noop"]["importtime"]
        parts += [
            "",
            f"python -X importtime ({imports['runs']} runs, medians): top-level imports "
            f"{imports['total_top_level_ms']:.1f} ms; largest: "
            + ", ".join(f"{k} {v:.1f} ms" for k, v in list(imports["top_level_ms"].items())[:6]),
        ]
    keys = report.get("keys")
    if keys:
        for name in ("watch", "stat", "cold"):
            parts += ["", f"key scenario `{name}`: {keys['details'][name]}"]
            parts.append(format_functions(keys["attribution"][name], limit=12))
        for name, profile in keys["profiles"].items():
            parts += ["", f"cProfile, one `{name}` run, most own time:"]
            parts += [
                f"  {r['own_s'] * 1e3:8.1f} ms own {r['cumulative_s'] * 1e3:8.1f} ms cum "
                f"{r['calls']:>7} calls  {r['function']}"
                for r in profile[:8]
            ]
    return "\n".join(parts)


if __name__ == "__main__":
    sys.exit(main())
