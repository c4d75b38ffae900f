"""The benchmark suite end to end in its smallest mode, and its report on made-up samples.

The smoke run builds the sample module for real (1 round, a local dir as the
share, no FUSE); it checks that the suite's three outputs exist and agree, not
what the numbers are.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.suite import MODES, plan_notes, primary_latency
from benchmarks.suite_report import comparison_rows, markdown_table, write_chart
from benchmarks.suite_workloads import WORKLOADS, write_synthetic

REPO = Path(__file__).resolve().parent.parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def sample(scenario: str, seconds: float, share: str | None = None, rnd: int = 0) -> dict:
    return {"scenario": scenario, "workload": "std", "share": share, "round": rnd,
            "order": 0, "seconds": seconds, "load1_before": 0.0}


def test_rows_ratios_and_targets_per_share() -> None:
    samples = [
        sample("cold_native", 20.0), sample("cold_native", 30.0, rnd=1),
        sample("warm_native", 0.2), sample("gcm_local", 0.3),
        sample("native_on_share", 8.0, "+1 ms"), sample("native_on_share", 40.0, "+5 ms"),
        sample("new_node_prefetch", 2.0, "+1 ms"), sample("new_node_prefetch", 5.0, "+5 ms"),
    ]
    rows = comparison_rows(samples, ["std"], target_shares=["+1 ms"])
    by = {(r["scenario"], r["baseline"], r["share"]): r for r in rows}
    assert by[("cold_native", None, None)]["stats"]["median"] == 25.0
    assert by[("gcm_local", "warm_native", None)]["ratio"] == pytest.approx(1.5)
    assert by[("gcm_local", "warm_native", None)]["met"] is False  # 1.3x target on std
    vs_cold = by[("new_node_prefetch", "cold_native", "+1 ms")]
    assert vs_cold["ratio"] == pytest.approx(0.08) and vs_cold["met"] is True
    assert by[("new_node_prefetch", "native_on_share", "+1 ms")]["met"] is True  # 0.25x
    slow = by[("new_node_prefetch", "native_on_share", "+5 ms")]
    assert slow["ratio"] == pytest.approx(0.125) and slow["target"] is None  # stated at 1 ms
    table = markdown_table(rows).splitlines()
    assert len(table) == 2 + len(rows) and all(line.startswith("|") for line in table)
    assert any("**NO**" in line and "<= 1.3x" in line for line in table)


def test_chart_is_a_png(tmp_path: Path) -> None:
    samples = [sample("warm_native", 0.2), sample("native_on_share", 8.0, "+1 ms")]
    write_chart(samples, ["std"], "title", tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes()[:8] == PNG_MAGIC


def test_plan_fits_the_modes_and_says_what_it_leaves_out() -> None:
    for mode in MODES.values():
        assert set(mode.cold) | set(mode.noop) | set(mode.sweep) <= set(mode.workloads)
        assert set(mode.workloads) <= set(WORKLOADS)
    notes = plan_notes(MODES["quick"], [5.0])
    assert any(n.startswith("std: cold scenario has 1 sample") for n in notes)
    assert any("full mode only" in n for n in notes)
    assert primary_latency([0.2, 1.0, 5.0]) == 1.0 and primary_latency([5.0]) == 5.0


def test_synthetic_module_shapes(tmp_path: Path) -> None:
    write_synthetic(tmp_path / "chain", 3, 2, chain=True)
    first = (tmp_path / "chain" / "pkg" / "p002" / "f00.go").read_text()
    assert 'dep "example.com/synthbench/pkg/p001"' in first and "dep.F001_0(x)" in first
    assert "import" not in (tmp_path / "chain" / "pkg" / "p002" / "f01.go").read_text()
    write_synthetic(tmp_path / "wide", 3, 2, chain=False)
    top = (tmp_path / "wide" / "pkg" / "top" / "top.go").read_text()
    assert all(f"pkg/p00{i}" in top for i in range(3))


def test_smoke_run_writes_json_markdown_and_chart(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--out", str(out),
         "--tmp-dir", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "results.json").read_text())
    assert report["error"] is None and report["mode"] == "smoke"
    assert "local directory standing in" in report["shared_dir"][0]
    scenarios = {s["scenario"] for s in report["samples"]}
    assert scenarios == {
        "cold_native", "cold_gcm", "warm_native", "gcm_local", "native_on_share",
        "new_node", "new_node_prefetch", "noop_native", "noop_gcm",
    }
    assert all(s["seconds"] > 0 for s in report["samples"])
    markdown = (out / "results.md").read_text()
    assert markdown.count("| sample |") == len(report["rows"]) == 11
    assert "module download (scenario 7): not run" in markdown
    assert (out / "chart.png").read_bytes()[:8] == PNG_MAGIC
    assert "elapsed" in proc.stdout


def test_cli_bench_passes_its_args_to_the_suite() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gocachemgr", "bench", "--help"], cwd="/", capture_output=True,
        text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0 and "python -m benchmarks" in proc.stdout
    assert "--latency-ms" in proc.stdout


def test_cli_bench_without_a_checkout_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from gocachemgr import cli

    monkeypatch.setattr(cli, "__file__", str(tmp_path / "site-packages" / "gocachemgr" / "cli.py"))
    assert cli.run(["bench", "--quick"]) != 0
    assert "not installed with the package" in capsys.readouterr().err
