"""`gocachemgr demo`: the main job on an embedded default, on any machine.

Two "nodes" (separate local dirs) share one directory that stands in for the
NFS share. Node A builds the bundled sample module cold and fills the share;
node B starts empty and gets its build from the share. The report says where
every cache lookup was answered. Then the same for modules: node A builds a
program with generated module dependencies from an "upstream" file:// proxy
and publishes them; node B, with upstream off, builds it from the share.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gocachemgr.config import Config
from gocachemgr.index import Index
from gocachemgr.modules.synth import upstream_fixture
from gocachemgr.runner import run_go
from gocachemgr.sandbox import OFFLINE_GO
from gocachemgr.stats import read_stats
from gocachemgr.toolchain import find_go

SAMPLE = Path(__file__).parent / "sample"


def _node_stats(config: Config) -> dict[str, int]:
    index = Index(config.index_dir)
    try:
        return read_stats(index)
    finally:
        index.close()


def _build_on_node(name: str, config: Config, src: Path, env: dict[str, str]) -> dict[str, Any]:
    binary = config.local_dir / "sample"
    started = time.perf_counter()
    code = run_go(config, ["build", "-trimpath", "-o", str(binary), "."], env=env, cwd=src)
    seconds = time.perf_counter() - started
    stats = _node_stats(config)
    result: dict[str, Any] = {
        "node": name,
        "exit_code": code,
        "seconds": round(seconds, 3),
        "from_local": stats["hits_local"],
        "from_shared": stats["hits_shared"],
        "misses": stats["misses"],
        "uploaded": stats["uploads_done"],
        "pending": stats["uploads_pending"],
        "binary": str(binary),
    }
    if code == 0:
        result["sha256"] = hashlib.sha256(binary.read_bytes()).hexdigest()
        run = subprocess.run([str(binary)], capture_output=True, text=True, timeout=60)
        result["output"] = run.stdout.strip().splitlines()[0] if run.stdout else ""
    return result


def run_demo(work_dir: Path | None, echo: Callable[[str], object] | None) -> dict[str, Any]:
    say = echo or (lambda _message: None)
    root = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="gocachemgr-demo-"))
    root = root.absolute()
    share = root / "share"
    if (root / "node-a").exists() or (root / "node-b").exists():
        shutil.rmtree(root / "node-a", ignore_errors=True)
        shutil.rmtree(root / "node-b", ignore_errors=True)
        shutil.rmtree(share, ignore_errors=True)
    share.mkdir(parents=True, exist_ok=True)
    src = root / "src"
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(SAMPLE, src)
    # The sample needs no modules: keep go offline and on the local toolchain.
    env = dict(os.environ, **OFFLINE_GO)
    nodes = {
        name: Config.load(
            overrides={"local_dir": str(root / f"node-{name}"), "shared_dir": str(share)}
        )
        for name in ("a", "b")
    }
    go = find_go(nodes["a"])
    say(f"gocachemgr demo in {root}")
    say(f"  go: {go}")
    say(f"  shared dir: {share}  (a local directory standing in for the NFS share)")
    results = []
    for name, note in (("a", "cold, fills the share"), ("b", "empty local cache, reads the share")):
        say(f"  building the sample module on node {name.upper()} ({note}) ...")
        results.append(_build_on_node(name.upper(), nodes[name], src, env))
    ok = all(r["exit_code"] == 0 for r in results) and results[0].get("sha256") == results[1].get(
        "sha256"
    )
    say("")
    header = f"{'node':<5}{'time':>8}{'from local':>12}{'from shared':>13}{'misses':>8}"
    say(f"  {header}{'uploaded':>10}")
    for r in results:
        say(
            f"  {r['node']:<5}{r['seconds']:>7.2f}s{r['from_local']:>12}{r['from_shared']:>13}"
            f"{r['misses']:>8}{r['uploaded']:>10}"
        )
    say("")
    if ok:
        speedup = results[0]["seconds"] / max(results[1]["seconds"], 1e-3)
        say(f"  node B built {speedup:.1f}x faster from the share; both binaries are identical")
        say(f"  the binary says: {results[1]['output']}")
    else:
        say("  demo FAILED: see the go output above")
    say("")
    modules = _share_modules(root, nodes, env, say)
    ok = ok and modules["ok"]
    return {
        "ok": ok,
        "dir": str(root),
        "shared_dir": str(share),
        "nodes": results,
        "modules": modules,
    }


def _share_modules(
    root: Path, nodes: dict[str, Config], env: dict[str, str], say: Callable[[str], object]
) -> dict[str, Any]:
    """Node A builds a program with module dependencies from upstream and publishes them;
    node B, upstream off, builds it from the shared module store alone (go.sum checked)."""
    shutil.rmtree(root / "upstream", ignore_errors=True)
    say("  modules: generating an upstream proxy and a program that needs it ...")
    upstream = upstream_fixture(root / "upstream")
    verified = {**env, "GOFLAGS": ""}  # -mod=readonly: every module checked against go.sum
    runs = []
    for name, goproxy, note in (
        ("a", upstream.goproxy, "upstream reachable, publishes"),
        ("b", "off", "upstream off, only the share"),
    ):
        say(f"  building it on node {name.upper()} ({note}) ...")
        binary = nodes[name].local_dir / "consumer"
        code = run_go(
            nodes[name],
            ["build", "-o", str(binary), "."],
            env={**verified, "GOPROXY": goproxy},
            cwd=upstream.consumer_dir,
        )
        output = ""
        if code == 0:
            output = subprocess.run(
                [str(binary)], capture_output=True, text=True, timeout=60
            ).stdout
        runs.append(
            {
                "node": name.upper(),
                "exit_code": code,
                "output_ok": output == (upstream.expected_output),
            }
        )
    published = _node_stats(nodes["a"])["modules_published"]
    ok = all(r["exit_code"] == 0 and r["output_ok"] for r in runs) and published > 0
    if ok:
        say(
            f"  node A published {published} module versions; node B built the program "
            f"offline from the share, go.sum verified"
        )
    else:
        say("  modules part FAILED: see the go output above")
    return {"ok": ok, "published": published, "builds": runs}
