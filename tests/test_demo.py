"""The README's main job: `gocachemgr demo` on the bundled sample module."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_demo_builds_node_b_from_the_share(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gocachemgr", "demo", "--json", "--dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    node_a, node_b = report["nodes"]
    assert report["ok"] is True
    assert node_a["misses"] > 0 and node_a["uploaded"] > 0 and node_a["pending"] == 0
    assert node_b["from_shared"] > 0 and node_b["misses"] < node_a["misses"]
    assert node_a["sha256"] == node_b["sha256"]
    assert node_b["output"] == "Hello, Gocachemgr!"
    assert (Path(report["shared_dir"]) / "FORMAT").read_text().startswith("gocachemgr-shared 1")


def test_demo_human_output_names_the_tiers(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gocachemgr", "demo", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "from shared" in proc.stdout and "standing in for the NFS share" in proc.stdout
    assert "both binaries are identical" in proc.stdout
