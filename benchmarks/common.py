"""Small helpers both benchmarks share: progress lines, ratios, rotation, table cells."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence


def log(message: str) -> None:
    """A timestamped progress line on stderr (stdout carries the results)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def ratio(value: float | None, baseline: float | None) -> float | None:
    if value is None or not baseline:
        return None
    return value / baseline


def rotate(items: Sequence[str], round_no: int) -> list[str]:
    """Round ``round_no``'s order: each variant goes first in turn, so outside load
    does not always hit the same one."""
    k = round_no % len(items) if items else 0
    return [*items[k:], *items[:k]]


def fmt_met(met: bool | None) -> str:
    return "-" if met is None else ("yes" if met else "**NO**")
