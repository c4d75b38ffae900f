"""Module sharing, measured side by side: download from the shared store vs upstream,
the cost of publishing after a build, and the publish scan when nothing is new.

    python -m benchmarks.bench_modules [--modules N] [--runs N] [--quick] [--json OUT]

A generated graph of N modules (default 50; ``gocachemgr.modules.synth``) is
served by an "upstream" file:// proxy on the same disk as the shared dir (no
public proxy is reachable here, and no NFS: the share is a local directory).

1. Node B's ``go mod download`` of the whole graph, fresh GOMODCACHE each run:
   (a) ``gocachemgr go mod download`` with upstream off, so every module comes
       from the shared store (filled once beforehand);
   (b) plain ``go mod download`` from the upstream proxy;
   (c) ``gocachemgr go mod download`` from upstream without a shared dir (the
       wrapper's own cost). No target: both numbers are reported.
2. Node A's ``gocachemgr go build`` of the consumer with an empty module cache
   (so all N modules are downloaded): (a) with a fresh shared dir, which
   publishes N modules afterwards, vs (b) without a shared dir. Twice: with the
   modules' packages already in the local build cache (only download and
   publish differ), and with only the standard library there (the build
   compiles the new modules, as a real one does). Target: (a)/(b) <= 1.10.
3. The publish scan when nothing is new (``publish_modules`` in-process, after
   everything was published). Target: median <= 20 ms.

Variants of a scenario run in rotating order, round by round; medians, min and max.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks.common import fmt_met, log, ratio, rotate
from gocachemgr.config import Config
from gocachemgr.modules.publish import publish_modules
from gocachemgr.modules.synth import Upstream, synthetic_graph
from gocachemgr.sandbox import isolated_env
from gocachemgr.toolchain import find_go

PUBLISH_OVERHEAD_TARGET = 1.10
SCAN_TARGET_S = 0.020
FULL_RUNS = 5
QUICK_RUNS = 3
SCAN_RUNS = 21


def remove_tree(path: Path) -> None:
    """Delete a module cache: go makes extracted modules read-only."""
    if not path.exists():
        return
    for root, dirs, _ in os.walk(path):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
    shutil.rmtree(path)


class Bench:
    def __init__(self, work: Path, modules: int) -> None:
        self.work = work
        self.env = isolated_env(work / "env")
        self.env.update(GOFLAGS="", GOCACHEMGR_FLUSH_TIMEOUT="600")
        self.go = find_go(Config.load(env=self.env), self.env)
        log(f"generating {modules} modules")
        self.upstream: Upstream = synthetic_graph(work / "upstream", modules)

    def run(self, argv: Sequence[str], env: dict[str, str]) -> float:
        start = time.perf_counter()
        proc = subprocess.run(
            argv, cwd=self.upstream.consumer_dir, env=env, capture_output=True, text=True
        )
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stderr[-2000:]}")
        return elapsed

    def gocachemgr(self, local: Path, share: Path | None, goproxy: str) -> dict[str, str]:
        return {
            **self.env,
            "GOPROXY": goproxy,
            "GOCACHEMGR_LOCAL_DIR": str(local),
            "GOCACHEMGR_SHARED_DIR": str(share) if share else "",
        }

    # -- 1: download ---------------------------------------------------------------

    def download(self, runs: int) -> dict[str, list[float]]:
        share = self.work / "dl-share"
        share.mkdir()
        seed = self.work / "dl-seed"
        cmd = [sys.executable, "-P", "-m", "gocachemgr", "go", "mod", "download"]
        self.run(cmd, self.gocachemgr(seed, share, self.upstream.goproxy))  # fills the store
        local = self.work / "dl-node"
        variants: dict[str, Callable[[], float]] = {
            "shared store": lambda: self.run(cmd, self.gocachemgr(local, share, "off")),
            "upstream, plain go": lambda: self.run(
                [self.go, "mod", "download"],
                {**self.env, "GOPROXY": self.upstream.goproxy,
                 "GOMODCACHE": str(local / "gomodcache")},
            ),
            "upstream, gocachemgr go": lambda: self.run(
                cmd,
                {**self.gocachemgr(local, None, self.upstream.goproxy),
                 "GOMODCACHE": str(local / "gomodcache")},
            ),
        }
        return self.side_by_side(variants, runs, before=lambda: remove_tree(local / "gomodcache"))

    # -- 2: publish overhead ---------------------------------------------------------

    def publish_overhead(self, runs: int, *, modules_compiled: bool) -> dict[str, list[float]]:
        """Build with a fresh module cache, with and without a shared dir to publish to.

        ``modules_compiled``: the local build cache already holds the modules'
        packages (only downloads and publishing differ: the worst case for the
        ratio); else it holds only the standard library the program needs, so
        the build compiles the 50 new modules, as a real build that needs new
        modules does.
        """
        local = self.work / "pub-node"
        snapshot = self.work / "pub-snapshot"
        cmd = [sys.executable, "-P", "-m", "gocachemgr", "go", "build", "-o",
               str(self.work / "app"), "."]
        modcache = {"GOMODCACHE": str(local / "gomodcache")}
        without = {**self.gocachemgr(local, None, self.upstream.goproxy), **modcache}
        remove_tree(local)
        remove_tree(snapshot)
        warm = cmd if modules_compiled else [*cmd[:5], "build", "fmt"]
        self.run(warm, without)
        remove_tree(local / "gomodcache")
        shutil.copytree(local, snapshot)
        shares: list[Path] = []

        def fresh_node() -> None:
            remove_tree(local)
            shutil.copytree(snapshot, local)

        def with_share() -> float:
            share = Path(tempfile.mkdtemp(dir=self.work, prefix="pub-share-"))
            shares.append(share)
            return self.run(cmd, self.gocachemgr(local, share, self.upstream.goproxy))

        variants: dict[str, Callable[[], float]] = {
            "build + publish (shared dir)": with_share,
            "build, no shared dir": lambda: self.run(cmd, without),
        }
        times = self.side_by_side(variants, runs, before=fresh_node)
        published = sum(1 for s in shares for _ in (s / "modules").rglob("*.zip"))
        log(f"published {published} zips over {len(shares)} runs")
        return times

    # -- 3: scan --------------------------------------------------------------------

    def scan(self, runs: int) -> list[float]:
        local = self.work / "scan-node"
        share = self.work / "scan-share"
        share.mkdir()
        cmd = [sys.executable, "-P", "-m", "gocachemgr", "go", "mod", "download"]
        self.run(cmd, self.gocachemgr(local, share, self.upstream.goproxy))
        config = Config.load(env=self.gocachemgr(local, share, "off"))
        publish_modules(config)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            report = publish_modules(config)
            times.append(time.perf_counter() - start)
            assert report.versions_published == 0 and report.files_written == 0
        return times

    @staticmethod
    def side_by_side(
        variants: dict[str, Callable[[], float]], runs: int, before: Callable[[], None]
    ) -> dict[str, list[float]]:
        times: dict[str, list[float]] = {name: [] for name in variants}
        for round_no in range(runs):
            for name in rotate(list(variants), round_no):
                before()
                times[name].append(variants[name]())
            log(f"round {round_no + 1}/{runs}: "
                + ", ".join(f"{n} {t[-1]:.3f} s" for n, t in times.items()))
        return times


def row(name: str, values: list[float], baseline: list[float] | None = None) -> dict[str, object]:
    med = statistics.median(values)
    return {
        "scenario": name,
        "n": len(values),
        "median_s": med,
        "min_s": min(values),
        "max_s": max(values),
        "vs_baseline": ratio(med, statistics.median(baseline)) if baseline else None,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", type=int, default=50)
    parser.add_argument("--runs", type=int)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_RUNS} rounds")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    runs = args.runs or (QUICK_RUNS if args.quick else FULL_RUNS)
    with tempfile.TemporaryDirectory(prefix="bench-modules-") as tmp:
        bench = Bench(Path(tmp), args.modules)
        log("1/3 download")
        download = bench.download(runs)
        log("2/3 publish overhead: modules already compiled, then compiled by the build")
        publish = bench.publish_overhead(runs, modules_compiled=True)
        compiling = bench.publish_overhead(runs, modules_compiled=False)
        log("3/3 scan with nothing new")
        scan = bench.scan(SCAN_RUNS)
    base_dl = download["upstream, plain go"]
    rows = [
        row(f"go mod download, {args.modules} modules: {name}", times, base_dl)
        for name, times in download.items()
    ]
    for label, times in (("modules already compiled", publish),
                         ("build compiles the modules", compiling)):
        pub = row(f"gocachemgr go build, {label}: download + publish to a shared dir",
                  times["build + publish (shared dir)"], times["build, no shared dir"])
        pub["target"] = f"<= {PUBLISH_OVERHEAD_TARGET}x"
        pub["met"] = (pub["vs_baseline"] is not None
                      and pub["vs_baseline"] <= PUBLISH_OVERHEAD_TARGET)
        rows += [pub, row(f"gocachemgr go build, {label}: download, no shared dir",
                          times["build, no shared dir"])]
    scan_row = row("publish scan, nothing new (in-process)", scan)
    scan_row["target"] = f"<= {SCAN_TARGET_S * 1e3:.0f} ms"
    scan_row["met"] = scan_row["median_s"] <= SCAN_TARGET_S  # type: ignore[operator]
    rows.append(scan_row)
    print("| scenario | n | median | min | max | vs baseline | target | met? |")
    print("|---|---:|---:|---:|---:|---:|---|---|")
    for r in rows:
        vs = r["vs_baseline"]
        print(f"| {r['scenario']} | {r['n']} | {r['median_s']:.3f} s | {r['min_s']:.3f} s "
              f"| {r['max_s']:.3f} s | {'-' if vs is None else f'{vs:.3f}x'} "
              f"| {r.get('target', '-')} | {fmt_met(r.get('met'))} |")  # type: ignore[arg-type]
    if args.json:
        args.json.write_text(json.dumps({"modules": args.modules, "runs": runs, "rows": rows},
                                        indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
