"""Fast checks of the benchmark's helpers (the benchmark itself takes half an hour)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks.bench_cacheprog import (
    Run,
    format_rss_table,
    format_time_table,
    go_quote,
    paired_ratios,
    ratio,
    read_rss_report,
    rotate,
    summarize,
    target_met,
    wrapper_argv,
    write_rss_wrapper,
)


def test_summarize_and_ratios() -> None:
    stats = summarize([3.0, 1.0, 2.0, 10.0])
    assert stats == {"n": 4, "median": 2.5, "min": 1.0, "max": 10.0}
    assert ratio(2.6, 2.0) == 1.3
    assert ratio(None, 2.0) is None and ratio(1.0, 0.0) is None
    native = [Run("n", 1, 2.0, 0, 0), Run("n", 2, 4.0, 0, 0)]
    ours = [Run("g", 2, 5.0, 0, 0), Run("g", 1, 2.2, 0, 0), Run("g", 3, 9.0, 0, 0)]
    assert paired_ratios(ours, native) == [1.25, 1.1]  # by round; round 3 has no partner


def test_targets_and_rotation() -> None:
    assert target_met(1.3, 1.3) is True
    assert target_met(150.0, 150.0, strict=True) is False
    assert target_met(None, 1.3) is None
    assert [rotate(["a", "b", "c"], r) for r in range(3)] == [
        ["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"],
    ]


def test_tables_are_markdown_with_one_row_per_scenario() -> None:
    table = format_time_table(
        [
            {"scenario": "native", "stats": summarize([1.0, 2.0, 3.0]), "cpu": 4.0},
            {"scenario": "ours", "stats": summarize([2.0]), "ratio": 1.25, "paired": 1.2,
             "target": "<= 1.30x", "met": True},
            {"scenario": "slow", "stats": None, "ratio": 2.0, "target": "<= 1.10x",
             "met": False},
        ]
    )
    lines = table.splitlines()
    assert len(lines) == 5 and all(line.startswith("|") for line in lines)
    assert "| native | 3 | 2.00 | 1.00 | 3.00 | - | - | - | - | 4.0 | - |" in lines
    assert "| ours | 1 | 2.00 | 2.00 | 2.00 | 1.250x | 1.200x | <= 1.30x | yes | - | - |" in lines
    assert "**NO**" in lines[4]
    rss = format_rss_table([{"scenario": "cold", "rss_mb": 40.25, "cpu_s": 3.0,
                             "build_s": 100.0, "target": "< 150 MB", "met": True}])
    assert rss.splitlines()[2] == "| cold | 40.2 | 3.0 | 100.0 | < 150 MB | yes |"


def test_go_quote() -> None:
    assert go_quote("/usr/bin/python3") == "/usr/bin/python3"
    assert go_quote("/a b/python") == "'/a b/python'"
    assert go_quote("it's here") == "\"it's here\""


def test_rss_wrapper_reports_the_child_peak_and_passes_stdio(tmp_path: Path) -> None:
    wrapper = write_rss_wrapper(tmp_path)
    report = tmp_path / "rss.json"
    child = [
        sys.executable, "-c",
        "import sys; b = bytearray(80 << 20); b[::4096] = b'x' * len(b[::4096]); "
        "sys.stdout.write(sys.stdin.read().upper()); sys.exit(3)",
    ]
    proc = subprocess.run(
        wrapper_argv(wrapper, report, child), input="hello", capture_output=True, text=True,
        timeout=60,
    )
    assert proc.stdout == "HELLO"  # the child had the wrapper's stdin and stdout
    assert proc.returncode == 3
    data = read_rss_report(report, timeout=1)
    assert data["returncode"] == 3
    assert 80 * 1024 <= data["maxrss_kb"] < 400 * 1024  # the child's 80 MB, not the wrapper's
