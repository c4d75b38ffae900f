"""The whole local-vs-NFS comparison in one command: ``python -m benchmarks [--quick]``.

    python -m benchmarks [--quick | --smoke] [--runs N] [--shared-dir PATH]
                         [--latency-ms 1 | --latency-ms 0.2,1,5] [--out DIR] [--keep]

Scenarios, each run side by side with its baseline (variants alternate round by
round, ``benchmarks.common.rotate``), per workload:

1. cold: native go with an empty GOCACHE vs ``gocachemgr go`` with an empty local
   tier and an empty share (no share available: an empty local tier alone);
2. warm native go, GOCACHE on local disk;
3. native GOCACHE placed on the shared dir, warm (the anti-pattern);
4. ``gocachemgr go``, warm local tier (no shared dir);
5. a new node: an empty local dir per run, the share warmed by another node (the
   last cold gocachemgr run), without prefetch (GOCACHEMGR_PREFETCH=0) and with it;
6. ``gocachemgr build -o`` no-op (content-key hit) vs ``go build -o``, warm native;
7. module download from the shared store vs an upstream file:// proxy
   (``benchmarks.bench_modules.Bench``, its share a local dir).

The warm caches of 2-6 are what the last cold round left (the native GOCACHE,
the gocachemgr local dir, the share it filled); a workload whose cold scenario
gets one round has that round as its warm-up. The native GOCACHE on the share
is a copy of the warm local one, written beside the emulation (nothing is timed
then). The shared dir is ``--shared-dir`` (e.g. a real NFS mount; a subdirectory
is made and removed) or, by default, ``benchmarks.nfsemu``: a FUSE mount over a
local directory that adds a fixed latency to every operation. FUSE involves no
network at all; the mount point lives in this run's temp dir. Every go command
runs in ``gocachemgr.sandbox.isolated_env`` (offline, CGO_ENABLED=0, GOFLAGS
empty) with homes and caches in one temp dir; gocachemgr processes get a
bytecode cache there, as a pip-installed copy has.

Modes (``MODES``; measured on the 2-core machine of docs/benchmarks.md): --smoke
(1 round, the sample module, a local dir as the share: the test, ~20 s), --quick
(3 rounds; sample, a 20x10 generated module and std; ~2.7 min) and the default
full mode (5 rounds; std, sample, generated 100x20 wide and 50x5 chain, cmd/go;
<= 15 min). What a mode leaves out is printed and written with the results, as
is anything skipped (e.g. no FUSE here: the shared scenarios, with the reason).
The issue's targets are stated for `go build std`; other workloads get ratios only.

Outputs (``--out``, default benchmarks/results/<timestamp>/): results.json
(machine, git revision, every sample), results.md (the table) and chart.png.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.bench_build import with_bytecode_cache
from benchmarks.bench_cacheprog import REPO, machine_info
from benchmarks.common import log, rotate
from benchmarks.suite_report import comparison_rows, markdown_table, write_chart
from benchmarks.suite_workloads import WORKLOADS, Workload
from gocachemgr.config import Config
from gocachemgr.sandbox import isolated_env
from gocachemgr.toolchain import find_go

TIMEOUT_S = 1800
TARGET_LATENCY_MS = 1.0  # the issue states the shared-tier targets at 1 ms


# Imports every gocachemgr module (and what they import) once, so that the bytecode
# cache is written before the first timed run rather than during it.
PRIME_BYTECODE = """\
import asyncio, concurrent.futures, importlib, pkgutil, gocachemgr
for m in pkgutil.walk_packages(gocachemgr.__path__, "gocachemgr."):
    if not m.name.endswith("__main__"):
        importlib.import_module(m.name)
"""


class SuiteError(Exception):
    """A command failed; the message has its output."""


@dataclass(frozen=True)
class Mode:
    """How much to run. Workloads in ``cold`` get ``runs`` cold rounds, the rest one
    (their warm-up); ``sweep`` workloads repeat the shared scenarios at each extra latency."""

    name: str
    runs: int
    workloads: tuple[str, ...]
    cold: tuple[str, ...]
    noop: tuple[str, ...]
    sweep: tuple[str, ...]
    modules: int  # generated modules in scenario 7; 0 skips it


MODES = {
    "smoke": Mode("smoke", 1, ("sample",), ("sample",), ("sample",), (), 0),
    "quick": Mode(
        "quick", 3, ("sample", "synth-wide-20x10", "std"), ("synth-wide-20x10",),
        ("sample",), (), 10,
    ),
    "full": Mode(
        "full", 5,
        ("std", "sample", "synth-wide-100x20", "synth-chain-50x5", "cmd-go"),
        ("std", "synth-wide-100x20", "synth-chain-50x5"),
        ("sample", "synth-wide-100x20", "cmd-go"),
        ("std", "sample"),
        50,
    ),
}


# -- the shared dir ----------------------------------------------------------------------


@dataclass(frozen=True)
class Share:
    """Where the share is for go and gocachemgr (``path``) and for preparing content
    without the emulation's latency (``backing``); ``tag`` names it in every output."""

    path: Path
    backing: Path
    tag: str
    description: str
    on_target: bool  # the shared-tier targets apply (1 ms emulated, or --shared-dir)


def emulation_unavailable() -> str | None:
    """Why the FUSE emulation cannot run here, or None."""
    try:
        from benchmarks import nfsemu
    except ImportError as exc:
        return f"benchmarks/nfsemu.py cannot be imported ({exc})"
    return nfsemu.availability()


@contextlib.contextmanager
def emulated_share(root: Path, latency_ms: float) -> Iterator[Share]:
    """The emulated NFS mount over ``root/share-backing`` (kept between latencies)."""
    from benchmarks import nfsemu

    backing, mountpoint = root / "share-backing", root / "share-mnt"
    backing.mkdir(exist_ok=True)
    mountpoint.mkdir(exist_ok=True)
    with nfsemu.emulated_nfs(backing, mountpoint, latency_ms) as path:
        yield Share(
            path=Path(path), backing=backing, tag=f"+{latency_ms:g} ms",
            description=f"emulated NFS (FUSE, +{latency_ms:g} ms per operation; a local "
            "FUSE mount over a directory on this machine's disk, no network involved)",
            on_target=latency_ms == TARGET_LATENCY_MS,
        )


def given_share(directory: Path, stamp: str, *, stand_in: bool) -> Share:
    """A subdirectory of ``directory`` (--shared-dir, or the smoke run's local stand-in)."""
    path = directory / f"gocachemgr-bench-{stamp}"
    path.mkdir(parents=True)
    if stand_in:
        return Share(path, path, "local dir", "a local directory standing in for the share "
                     "(no FUSE, no NFS, no added latency)", on_target=False)
    return Share(path, path, "--shared-dir", f"--shared-dir {directory} "
                 f"({filesystem_of(directory)})", on_target=True)


def filesystem_of(path: Path) -> str:
    """'fstype on mountpoint' from /proc/mounts, the longest mount point containing ``path``."""
    best = ("", "unknown filesystem")
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and len(parts[1]) >= len(best[0]) and (
                str(path.resolve()) + "/"
            ).startswith(parts[1].rstrip("/") + "/"):
                best = (parts[1], f"{parts[2]} on {parts[1]}")
    return best[1]


# -- running builds ------------------------------------------------------------------------


@dataclass
class Caches:
    """One workload's caches as its last cold round left them; ``share`` is relative to
    the share's root, so a remount at another latency finds it."""

    native: Path
    local: Path
    share: str | None


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


@dataclass
class Suite:
    root: Path
    go: str
    env: dict[str, str]
    samples: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, root: Path) -> Suite:
        env = isolated_env(root / "env")
        env.update(GOFLAGS="", GOCACHEMGR_FLUSH_TIMEOUT="600")  # a cold run leaves a full share
        env = with_bytecode_cache(env, root / "pycache")
        go = find_go(Config.load(env=env), env)
        suite = cls(root, go, env)
        suite.run([sys.executable, "-P", "-c", PRIME_BYTECODE], env, root)
        return suite

    def native_env(self, gocache: Path) -> dict[str, str]:
        gocache.mkdir(parents=True, exist_ok=True)
        return {**self.env, "GOCACHE": str(gocache)}

    def gcm_env(self, local: Path, shared: Path | None, prefetch: bool = True) -> dict[str, str]:
        return {
            **self.env,
            "GOCACHEMGR_LOCAL_DIR": str(local),
            "GOCACHEMGR_SHARED_DIR": str(shared) if shared else "",
            "GOCACHEMGR_PREFETCH": "1" if prefetch else "0",
        }

    def go_argv(self, w: Workload) -> list[str]:
        return [self.go, "build", *w.packages]

    @staticmethod
    def gcm_argv(*args: str) -> list[str]:
        return [sys.executable, "-P", "-m", "gocachemgr", *args]

    def run(self, argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> str:
        """Run a command that must succeed; returns its stderr."""
        proc = subprocess.run(list(argv), env=dict(env), cwd=cwd, capture_output=True,
                              text=True, timeout=TIMEOUT_S, check=False)
        if proc.returncode != 0:
            raise SuiteError(f"{' '.join(argv)} (in {cwd}) exited {proc.returncode}:\n"
                             f"{proc.stdout[-1500:]}{proc.stderr[-3000:]}")
        return proc.stderr

    def timed(self, scenario: str, w: Workload, argv: Sequence[str], env: Mapping[str, str],
              cwd: Path, where: tuple[int, int], share: Share | None = None) -> None:
        os.sync()  # earlier runs' dirty pages are not written back during this one
        load1 = os.getloadavg()[0]
        start = time.perf_counter()
        self.run(argv, env, cwd)
        seconds = time.perf_counter() - start
        tag = share.tag if share else None
        self.record(scenario, w.name, seconds, where, load1, tag)
        log(f"  {w.name} {scenario}{f' [{tag}]' if tag else ''}: {seconds:.3f} s "
            f"(load {load1:.1f})")

    def record(self, scenario: str, workload: str, seconds: float, where: tuple[int, int],
               load1: float | None, share: str | None) -> None:
        self.samples.append({"scenario": scenario, "workload": workload, "share": share,
                             "round": where[0], "order": where[1], "seconds": seconds,
                             "load1_before": load1})

    # -- scenario groups -------------------------------------------------------------

    def cold(self, w: Workload, cwd: Path, rounds: int, share: Share | None) -> Caches:
        """Scenario 1; returns the last round's caches (warm now) and removes the others."""
        ours = "cold_gcm" if share else "cold_gcm_local"
        kept: Caches | None = None
        for rnd in range(rounds):
            base = fresh(self.root / "cold" / w.name / str(rnd))
            caches = Caches(base / "gocache", base / "local", f"{w.name}-{rnd}" if share else None)
            for order, variant in enumerate(rotate(["cold_native", ours], rnd)):
                if variant == "cold_native":
                    env = self.native_env(caches.native)
                    self.timed(variant, w, self.go_argv(w), env, cwd, (rnd, order))
                else:
                    shared = None
                    if share and caches.share:
                        shared = share.path / caches.share
                        shared.mkdir()
                    env = self.gcm_env(caches.local, shared)
                    argv = self.gcm_argv("go", "build", *w.packages)
                    self.timed(variant, w, argv, env, cwd, (rnd, order), share)
            if kept is not None:
                self.drop(kept, share)
            kept = caches
        assert kept is not None
        if share and kept.share:  # anything still pending goes up now, untimed
            self.run(self.gcm_argv("sync"), self.gcm_env(kept.local, share.path / kept.share),
                     cwd)
        return kept

    def drop(self, caches: Caches, share: Share | None) -> None:
        shutil.rmtree(caches.native.parent, ignore_errors=True)
        if share and caches.share:
            shutil.rmtree(share.backing / caches.share, ignore_errors=True)

    def warm(self, w: Workload, cwd: Path, caches: Caches, share: Share | None, rounds: int,
             *, local: bool) -> None:
        """Scenarios 2-5 side by side; ``local`` False runs only the shared ones (sweep)."""
        shared = share.path / caches.share if share and caches.share else None
        native_on_share = share.path / f"native-{w.name}" if share else None
        if share and not (share.backing / f"native-{w.name}").exists():
            shutil.copytree(caches.native, share.backing / f"native-{w.name}", symlinks=True)
        node = self.root / "node"
        envs: dict[str, dict[str, str]] = {}
        if local:
            envs["warm_native"] = self.native_env(caches.native)
            envs["gcm_local"] = self.gcm_env(caches.local, None)
        if native_on_share is not None:
            envs["native_on_share"] = self.native_env(native_on_share)
        if shared is not None:
            envs["new_node"] = self.gcm_env(node, shared, prefetch=False)
            envs["new_node_prefetch"] = self.gcm_env(node, shared, prefetch=True)
        argvs = {k: self.go_argv(w) for k in ("warm_native", "native_on_share")}
        gcm = self.gcm_argv("go", "build", *w.packages)
        for name in ("warm_native", "gcm_local", "native_on_share"):  # untimed primers
            if name in envs:
                self.run(argvs.get(name, gcm), envs[name], cwd)
        variants = list(envs)
        for rnd in range(rounds):
            for order, variant in enumerate(rotate(variants, rnd)):
                if variant.startswith("new_node"):
                    fresh(node)
                on_share = share if variant in ("native_on_share", "new_node",
                                                "new_node_prefetch") else None
                self.timed(variant, w, argvs.get(variant, gcm), envs[variant], cwd,
                           (rnd, order), on_share)
        shutil.rmtree(node, ignore_errors=True)

    def noop(self, w: Workload, cwd: Path, caches: Caches, rounds: int) -> None:
        """Scenario 6: `gocachemgr build -o` hits vs `go build -o` relinking, both warm."""
        assert w.binary is not None
        out = fresh(self.root / "out")
        counter = iter(range(1_000_000))

        def target() -> str:
            return str(out / f"bin-{next(counter)}")

        native_env = self.native_env(caches.native)
        ours_env = self.gcm_env(caches.local, None)
        self.run([self.go, "build", "-o", target(), w.binary], native_env, cwd)
        self.run(self.gcm_argv("build", "-o", target(), w.binary), ours_env, cwd)  # the miss
        said = self.run(self.gcm_argv("build", "-v", "-o", target(), w.binary), ours_env, cwd)
        if "hit" not in said:
            raise SuiteError(f"{w.name}: the second gocachemgr build was not a hit:\n{said}")
        for rnd in range(rounds):
            for order, variant in enumerate(rotate(["noop_native", "noop_gcm"], rnd)):
                if variant == "noop_native":
                    argv, env = [self.go, "build", "-o", target(), w.binary], native_env
                else:
                    argv, env = self.gcm_argv("build", "-o", target(), w.binary), ours_env
                self.timed(variant, w, argv, env, cwd, (rnd, order))
        shutil.rmtree(out, ignore_errors=True)

    def modules(self, count: int, rounds: int) -> None:
        """Scenario 7 through bench_modules (its shared store is a local dir)."""
        from benchmarks.bench_modules import Bench

        names = {"shared store": "mod_shared", "upstream, plain go": "mod_upstream",
                 "upstream, gocachemgr go": "mod_upstream_gcm"}
        try:
            times = Bench(fresh(self.root / "modules"), count).download(rounds)
        except SystemExit as exc:  # bench_modules stops this way when a command fails
            raise SuiteError(f"module download: {exc}") from None
        for name, values in times.items():
            for rnd, seconds in enumerate(values):
                self.record(names[name], f"modules-{count}", seconds, (rnd, -1), None, None)


# -- the plan -------------------------------------------------------------------------------


def plan_notes(mode: Mode, sweep: Sequence[float]) -> list[str]:
    """What this mode leaves out, and why (printed and written with the results)."""
    notes = []
    for name in mode.workloads:
        w = WORKLOADS[name]
        if name not in mode.cold:
            notes.append(f"{name}: cold scenario has 1 sample (the warm-up build), not "
                         f"{mode.runs} rounds: a cold build of it is too slow for the "
                         f"{mode.name} mode's time budget")
        if w.binary is None:
            notes.append(f"{name}: no `gocachemgr build` no-op (scenario 6): nothing to link")
        elif name not in mode.noop:
            notes.append(f"{name}: no `gocachemgr build` no-op (scenario 6) in the {mode.name} "
                         "mode (time budget)")
    if not mode.modules:
        notes.append(f"module download (scenario 7): not run in the {mode.name} mode")
    if sweep and mode.name != "full":
        notes.append("--latency-ms with several values: the extra latencies run in the full "
                     "mode only")
    elif sweep:
        notes.append(f"extra latencies ({', '.join(f'{v:g}' for v in sweep)} ms): the shared "
                     f"scenarios of {', '.join(mode.sweep)} only (time budget)")
    return notes


def parse_latencies(text: str) -> list[float]:
    values = [float(v) for v in text.split(",") if v.strip()]
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError("expected e.g. 1 or 0.2,1,5 (milliseconds, >= 0)")
    return values


def primary_latency(latencies: Sequence[float]) -> float:
    return TARGET_LATENCY_MS if TARGET_LATENCY_MS in latencies else latencies[0]


@contextlib.contextmanager
def open_share(args: argparse.Namespace, root: Path, latency: float, stamp: str,
               skipped: list[str]) -> Iterator[Share | None]:
    """The share for one phase, or None (with the reason added to ``skipped``)."""
    if args.shared_dir or args.smoke:
        share = given_share(args.shared_dir or root, stamp, stand_in=not args.shared_dir)
        try:
            yield share
        finally:
            if not args.keep:
                shutil.rmtree(share.path, ignore_errors=True)
        return
    reason = emulation_unavailable()
    if reason is None:
        from benchmarks.nfsemu import EmulatedNFSUnavailable, MountFailed

        try:
            with emulated_share(root, latency) as share:
                yield share
            return
        except (EmulatedNFSUnavailable, MountFailed) as exc:
            reason = str(exc)
    skipped.append(f"shared-dir scenarios at +{latency:g} ms (cold with a share, native "
                   f"GOCACHE on the share, new node): emulated NFS unavailable: {reason}")
    log(f"SKIPPED: {skipped[-1]}")
    yield None


def run_suite(args: argparse.Namespace, mode: Mode, out_dir: Path) -> dict[str, Any]:
    started, t0 = datetime.now(UTC), time.perf_counter()
    stamp = started.strftime("%Y%m%d-%H%M%S")
    root = Path(tempfile.mkdtemp(prefix="gocachemgr-suite-", dir=args.tmp_dir))
    latencies = parse_latencies(args.latency_ms)
    first = primary_latency(latencies)
    emulated = not (args.shared_dir or args.smoke)
    others = [v for v in latencies if v != first] if emulated else []
    extra = others if mode.name == "full" else []
    suite = Suite.create(root)
    machine = machine_info(suite.go, suite.env)
    notes = plan_notes(mode, others)
    for note in notes:
        log(f"plan: {note}")
    shares: list[str] = []
    target_tags: list[str] = []
    kept: dict[str, tuple[Workload, Path, Caches]] = {}
    report: dict[str, Any] = {"error": None}
    try:
        with open_share(args, root, first, stamp, suite.skipped) as share:
            shares.append(share.description if share else "none (see skipped)")
            target_tags += [share.tag] if share and share.on_target else []
            for name in mode.workloads:
                w = WORKLOADS[name]
                log(f"workload {name}: {w.description}")
                cwd = w.prepare(root / "work", suite.go, suite.env)
                rounds = mode.runs if name in mode.cold else 1
                caches = suite.cold(w, cwd, rounds, share)
                suite.warm(w, cwd, caches, share, mode.runs, local=True)
                if name in mode.noop and w.binary:
                    suite.noop(w, cwd, caches, mode.runs)
                shutil.rmtree(caches.native.parent, ignore_errors=True)  # the share stays
                kept[name] = (w, cwd, caches)
        for latency in extra:
            with open_share(args, root, latency, stamp, suite.skipped) as share:
                if share is None:
                    continue
                shares.append(share.description)
                for name in mode.sweep:
                    w, cwd, caches = kept[name]
                    log(f"workload {name} at {share.tag}")
                    suite.warm(w, cwd, caches, share, mode.runs, local=False)
        if mode.modules:
            log(f"module download, {mode.modules} modules")
            suite.modules(mode.modules, mode.runs)
    except SuiteError as exc:
        report["error"] = str(exc)
        log(f"FAILED: {exc}")
    finally:
        if args.keep:
            log(f"keeping {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    order = [*mode.workloads, f"modules-{mode.modules}"]
    rows = comparison_rows(suite.samples, order, target_tags)
    report.update(
        suite="benchmarks.suite", mode=mode.name, runs=mode.runs,
        command=" ".join(["python -m benchmarks", *args.argv]),
        started_utc=started.isoformat(timespec="seconds"),
        elapsed_s=time.perf_counter() - t0,
        machine={**machine, "loadavg_end": os.getloadavg()},
        shared_dir=shares, latencies_ms=[first, *extra], plan_notes=notes,
        skipped=suite.skipped, workloads={n: WORKLOADS[n].description for n in mode.workloads},
        rows=rows, samples=suite.samples,
    )
    write_outputs(report, order, out_dir)
    return report


def write_outputs(report: dict[str, Any], order: Sequence[str], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    table = markdown_table(report["rows"])
    shares = "; then ".join(report["shared_dir"])
    (out_dir / "results.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out_dir / "results.md").write_text(render_markdown(report, table))
    if report["samples"]:
        title = (f"gocachemgr vs native go, {report['mode']} run {report['started_utc']}\n"
                 f"shared dir: {shares}")
        write_chart(report["samples"], order, title, out_dir / "chart.png")


def render_markdown(report: Mapping[str, Any], table: str) -> str:
    m = report["machine"]
    dirty = m["git_dirty_product_files_in_working_tree"]
    lines = [
        f"# gocachemgr benchmark suite: {report['mode']} run",
        "",
        f"Command: `{report['command']}`, started {report['started_utc']}, "
        f"took {report['elapsed_s']:.0f} s.",
        f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['mem_total_gib']:.1f} GiB, "
        f"{m['go_version']}, Python {m['python']}, git {m['git_head'][:12]}"
        f"{' (+ uncommitted product changes)' if dirty else ''}"
        f"; load average {m['loadavg_start'][0]:.1f} at the start, "
        f"{m['loadavg_end'][0]:.1f} at the end.",
        f"Shared dir: {'; then '.join(report['shared_dir'])}.",
        "",
        table,
        "",
    ]
    if report["error"]:
        lines += ["**The run stopped early:**", "", "```", report["error"], "```", ""]
    for title, items in (("Not run, by plan", report["plan_notes"]),
                         ("Skipped", report["skipped"])):
        if items:
            lines += [f"{title}:", "", *(f"- {item}" for item in items), ""]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks",
                                     description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="the <= 3 minute validation run")
    size.add_argument("--smoke", action="store_true",
                      help="1 round, sample module only, a local dir as the share (tests)")
    parser.add_argument("--runs", type=int, help="rounds per scenario (default 5; quick 3)")
    parser.add_argument("--shared-dir", type=Path,
                        help="a real shared dir (e.g. an NFS mount) instead of the emulation")
    parser.add_argument("--latency-ms", default="1",
                        help="emulated latency per operation, ms; several (0.2,1,5) in full mode")
    parser.add_argument("--out", type=Path, help="output dir (default benchmarks/results/<time>)")
    parser.add_argument("--tmp-dir", type=Path, help="parent of the temp dir (a local disk)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir afterwards")
    args = parser.parse_args(argv)
    parse_latencies(args.latency_ms)  # fail before any build
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    mode = MODES["smoke" if args.smoke else "quick" if args.quick else "full"]
    if args.runs:
        mode = dataclasses.replace(mode, runs=args.runs)
    out_dir = args.out or REPO / "benchmarks" / "results" / datetime.now().strftime(
        "%Y%m%d-%H%M%S")
    report = run_suite(args, mode, out_dir)
    print((out_dir / "results.md").read_text())
    print(f"elapsed {report['elapsed_s']:.0f} s; results in {out_dir}")
    return 1 if report["error"] else 0
