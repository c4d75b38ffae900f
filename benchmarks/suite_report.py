"""The suite's outputs from its samples: comparison rows, the markdown table and the chart.

Pure functions of the sample list (plus a description of the shared dir), so the
smoke test and a re-render of an old results.json give the same table.
"""

from __future__ import annotations

import statistics
import textwrap
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import fmt_met, ratio


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str  # in the table
    short: str  # on the chart
    shared: bool  # runs against the shared dir (one cell per latency)


SCENARIOS = {
    s.key: s
    for s in (
        Scenario("cold_native", "1 cold: native go, empty GOCACHE", "cold native", False),
        Scenario("cold_gcm", "1 cold: gocachemgr go, empty local tier + empty share",
                 "cold gocachemgr", True),
        Scenario("cold_gcm_local", "1 cold: gocachemgr go, empty local tier, no shared dir",
                 "cold gocachemgr (no share)", False),
        Scenario("warm_native", "2 warm: native go, GOCACHE on local disk", "warm native", False),
        Scenario("native_on_share", "3 warm: native GOCACHE on the shared dir (anti-pattern)",
                 "native GOCACHE on share", True),
        Scenario("gcm_local", "4 warm: gocachemgr go, local-tier hit", "gocachemgr local hit",
                 False),
        Scenario("new_node", "5 new node: gocachemgr go, shared tier only, no prefetch",
                 "new node, no prefetch", True),
        Scenario("new_node_prefetch", "5 new node: gocachemgr go, shared tier only, prefetch",
                 "new node, prefetch", True),
        Scenario("noop_native", "6 `go build -o`, warm native GOCACHE", "go build -o (warm)",
                 False),
        Scenario("noop_gcm", "6 `gocachemgr build -o` no-op (content-key hit)",
                 "gocachemgr build no-op", False),
        Scenario("mod_shared", "7 module download: gocachemgr, shared store (upstream off)",
                 "mod download: shared store", False),
        Scenario("mod_upstream", "7 module download: plain go, upstream file:// proxy",
                 "mod download: upstream", False),
        Scenario("mod_upstream_gcm", "7 module download: gocachemgr go, upstream, no shared dir",
                 "mod download: upstream via gocachemgr", False),
    )
}


@dataclass(frozen=True)
class Comparison:
    """A row: ``scenario`` against ``baseline`` (same workload), with an optional target.

    The issue states its targets for `go build std`; on the small workloads a fixed
    start-up cost dominates, so their rows show the ratio without a target.

    ``workloads`` limits the target to those workloads; ``on_target_share`` limits
    it to the shares the targets are stated for (1 ms emulated, or --shared-dir).
    """

    scenario: str
    baseline: str | None
    target: float | None = None
    workloads: tuple[str, ...] | None = None
    on_target_share: bool = False


COMPARISONS = (
    Comparison("cold_native", None),
    Comparison("cold_gcm", "cold_native", 1.1, workloads=("std",)),
    Comparison("cold_gcm_local", "cold_native", 1.1, workloads=("std",)),
    Comparison("warm_native", None),
    Comparison("native_on_share", "warm_native"),
    Comparison("gcm_local", "warm_native", 1.3, workloads=("std",)),
    Comparison("new_node", "cold_native"),
    Comparison("new_node", "native_on_share"),
    Comparison("new_node_prefetch", "cold_native", 0.1, ("std",), on_target_share=True),
    Comparison("new_node_prefetch", "native_on_share", 0.5, ("std",), on_target_share=True),
    Comparison("noop_native", None),
    Comparison("noop_gcm", "noop_native"),
    Comparison("mod_upstream", None),
    Comparison("mod_shared", "mod_upstream"),
    Comparison("mod_upstream_gcm", "mod_upstream"),
)

CellKey = tuple[str, str, str | None]  # scenario, workload, share tag (shared scenarios)


def cells(samples: Sequence[Mapping[str, Any]]) -> dict[CellKey, list[float]]:
    result: dict[CellKey, list[float]] = {}
    for s in samples:
        result.setdefault((s["scenario"], s["workload"], s["share"]), []).append(s["seconds"])
    return result


def summarize(values: Sequence[float]) -> dict[str, float]:
    return {"n": len(values), "median": statistics.median(values),
            "min": min(values), "max": max(values)}


def share_order(tag: str) -> float:
    """Emulated shares ("+1 ms") by latency, after any other kind."""
    try:
        return float(tag.removeprefix("+").removesuffix(" ms"))
    except ValueError:
        return -1.0


def comparison_rows(
    samples: Sequence[Mapping[str, Any]],
    workload_order: Sequence[str],
    target_shares: Collection[str],
) -> list[dict[str, Any]]:
    """One row per comparison that has data, workload by workload, shares in run order.

    A shared baseline is taken on the row's share; a local one has none.
    """
    by_cell = cells(samples)
    shares = sorted({k[2] for k in by_cell if k[2] is not None}, key=share_order)
    rows = []
    for workload in workload_order:
        for comp in COMPARISONS:
            scenario = SCENARIOS[comp.scenario]
            for share in shares if scenario.shared else [None]:
                values = by_cell.get((comp.scenario, workload, share))
                if not values:
                    continue
                stats = summarize(values)
                base_stats = None
                if comp.baseline is not None:
                    base_share = share if SCENARIOS[comp.baseline].shared else None
                    base = by_cell.get((comp.baseline, workload, base_share))
                    base_stats = summarize(base) if base else None
                    if base_stats is None:
                        continue  # a comparison without its baseline says nothing
                r = ratio(stats["median"], base_stats["median"]) if base_stats else None
                applies = comp.target is not None and (
                    comp.workloads is None or workload in comp.workloads
                ) and (not comp.on_target_share or share in target_shares)
                rows.append({
                    "workload": workload,
                    "scenario": comp.scenario,
                    "label": scenario.label,
                    "share": share,
                    "stats": stats,
                    "baseline": comp.baseline,
                    "baseline_median": base_stats["median"] if base_stats else None,
                    "ratio": r,
                    "target": comp.target if applies else None,
                    "met": (r <= comp.target) if applies and r is not None else None,
                })
    return rows


def _fmt(value: float | None, spec: str, suffix: str = "", prefix: str = "") -> str:
    return "-" if value is None else f"{prefix}{value:{spec}}{suffix}"


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    lines = [
        "| workload | scenario | share | n | median s | min s | max s "
        "| vs (baseline) | ratio | target | met? |",
        "|---|---|---|---:|---:|---:|---:|---|---:|---|---|",
    ]
    for row in rows:
        s = row["stats"]
        base = row["baseline"]
        vs = f"{SCENARIOS[base].short} ({row['baseline_median']:.3f} s)" if base else "-"
        r = row["ratio"]
        lines.append(
            f"| {row['workload']} | {row['label']} "
            f"| {row['share'] or '-'} | {s['n']} "
            f"| {s['median']:.3f} | {s['min']:.3f} | {s['max']:.3f} | {vs} "
            f"| {_fmt(r, '.3f', 'x')} | {_fmt(row['target'], 'g', 'x', '<= ')} "
            f"| {fmt_met(row['met'])} |"
        )
    return "\n".join(lines)


COLORS = {"native": "#8c8c8c", "share": "#d9822b", "gcm": "#2b6cb0", "mod": "#3c9d5d"}
LEGEND = (("native go", COLORS["native"]), ("native GOCACHE on the share", COLORS["share"]),
          ("gocachemgr", COLORS["gcm"]), ("module download", COLORS["mod"]))


def _color(key: str) -> str:
    if key.startswith("mod_"):
        return COLORS["mod"]
    if key == "native_on_share":
        return COLORS["share"]
    return COLORS["native"] if key.endswith("native") else COLORS["gcm"]


def write_chart(
    samples: Sequence[Mapping[str, Any]], workload_order: Sequence[str], title: str, out: Path
) -> None:
    """One panel per workload: a bar per scenario (and latency), median seconds on a log
    axis, error bars from min to max."""
    import matplotlib

    matplotlib.use("Agg")  # no display; the suite only writes a file
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import NullFormatter

    by_cell = cells(samples)
    order = list(SCENARIOS)
    panels = [w for w in workload_order if any(k[1] == w for k in by_cell)]
    ncols = 2 if len(panels) > 1 else 1
    nrows = (len(panels) + ncols - 1) // ncols
    per_panel = [sorted((k for k in by_cell if k[1] == w),
                        key=lambda k: (order.index(k[0]), share_order(k[2] or ""))) for w in panels]
    slots = max((len(p) for p in per_panel), default=1)  # same bar thickness in every panel
    height = max(3.0, slots * 0.42 + 1.4)
    width, total = 7.5 * ncols, height * nrows + 1.4  # + title (top) and legend (bottom)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, total), squeeze=False)
    for ax, workload, keys in zip(axes.flat, panels, per_panel, strict=False):
        medians = [statistics.median(by_cell[k]) for k in keys]
        lows = [m - min(by_cell[k]) for m, k in zip(medians, keys, strict=True)]
        highs = [max(by_cell[k]) - m for m, k in zip(medians, keys, strict=True)]
        labels = [SCENARIOS[k[0]].short + (f" [{k[2]}]" if k[2] is not None else "")
                  for k in keys]
        y = range(len(keys))
        ax.barh(y, medians, height=0.7, xerr=[lows, highs], color=[_color(k[0]) for k in keys],
                capsize=3, error_kw={"elinewidth": 1})
        for yi, m, k in zip(y, medians, keys, strict=True):
            ax.text(m * 1.08 + max(by_cell[k]) - m, yi, f"{m:.2f} s (n={len(by_cell[k])})",
                    va="center", fontsize=8)
        ax.set_yticks(list(y), labels, fontsize=8)
        ax.set_ylim(slots - 0.5, -0.5)
        ax.set_xscale("log")
        high = max(max(by_cell[k]) for k in keys) * 6
        ax.set_xlim(min(min(min(by_cell[k]) for k in keys) / 2, high / 100), high)
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("wall time, seconds (log scale; bar = median, whiskers = min..max)",
                      fontsize=8)
        ax.set_title(workload, fontsize=10)
        ax.grid(axis="x", which="both", alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    lines = [textwrap.fill(line, int(width / 0.085)) for line in title.splitlines()]
    fig.suptitle("\n".join(lines), fontsize=11)
    fig.legend(handles=[Patch(color=c, label=t) for t, c in LEGEND], loc="lower center",
               ncols=len(LEGEND), fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.4 / total, 1, 1 - 0.8 / total))
    fig.savefig(out, dpi=110)
    plt.close(fig)
