"""Sizes and durations as people write them in flags and config files."""

from __future__ import annotations

import re

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*", re.IGNORECASE)
_SIZE_FACTORS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_DURATION_FACTORS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_size(text: str) -> int:
    """Bytes from "500M", "20GiB", "1.5TB", "4096": decimal units, or binary with an ``i``."""
    match = _SIZE.fullmatch(str(text))
    if not match:
        raise ValueError(f"expected a size like 500MB, 20GiB or 1TB, got {text!r}")
    number, unit = float(match.group(1)), (match.group(2) or "").lower()
    base = unit[:1] if unit != "b" else "b"
    factor = _SIZE_FACTORS[base] if "i" not in unit else 1024 ** "bkmgt".index(base)
    return int(number * factor)


def parse_duration(text: str) -> float:
    """Seconds from "90s", "30m", "12h", "7d", "1h30m", "2w"."""
    compact = str(text).replace(" ", "").lower()
    parts = _DURATION.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"expected a duration like 90s, 30m, 12h or 7d, got {text!r}")
    return sum(float(n) * _DURATION_FACTORS[u] for n, u in parts)


def format_size(n: float) -> str:
    """Binary units, one decimal: what `stats` and `gc` print."""
    if n < 1024:
        return f"{n:.0f} B"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024
        if n < 1024:
            return f"{n:.1f} {unit}"
    return f"{n / 1024:.1f} TiB"
