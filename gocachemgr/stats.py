"""Counters kept per process and added to the lmdb index when a run ends."""

from __future__ import annotations

import threading
from collections import Counter

from gocachemgr.index import Index
from gocachemgr.units import format_size

# The names `gocachemgr stats` reports, in display order, with their meaning.
COUNTERS: dict[str, str] = {
    "gets": "get requests from go",
    "hits_local": "gets answered from the local tier",
    "hits_shared": "gets answered from the shared tier (then kept locally)",
    "misses": "gets that found nothing usable",
    "puts": "put requests from go",
    "put_bytes": "bytes go stored",
    "hit_bytes_local": "bytes served from the local tier",
    "hit_bytes_shared": "bytes copied from the shared tier",
    "uploads_done": "entries uploaded to the shared tier",
    "uploads_failed": "uploads that failed (still pending unless their body vanished)",
    "corrupt": "damaged shared files found and quarantined",
    "shared_errors": "shared-tier I/O errors turned into misses or skipped uploads",
    "degraded_runs": "runs that fell back to local-only",
    "builds_hit_local": "`gocachemgr build` runs served from local outputs without go",
    "builds_hit_shared": "`gocachemgr build` runs served from the shared tier without go",
    "builds_miss": "`gocachemgr build` runs that ran go build",
    "modules_published": "module versions published to the shared module store",
    "module_bytes_published": "bytes of module files published to the shared store",
    "modules_publish_failed": "module versions that could not be published (retried later)",
    "saved_ms_local": "estimated compile time saved by local hits, ms (what each entry cost)",
    "saved_ms_shared": "estimated compile time saved by shared hits, ms",
    "gc_runs": "gc runs of the local tier (by hand or automatic)",
    "gc_auto_runs": "automatic local gc runs after a go command (local_max_size)",
    "gc_bytes_removed_local": "bytes gc removed from the local tier",
    "upload_bytes": "bytes of bodies newly written to the shared tier",
    "prefetched": "shared entries copied to the local tier ahead of go (prefetch, warm --pull)",
    "prefetch_bytes": "bytes of prefetched entries",
    "prefetch_used": "gets answered by an entry this go command's prefetch copied",
}

# Running totals in their own lmdb table: `stats --zero` must not reset them.
TOTALS: dict[str, str] = {
    "local_bytes": "bytes in the local tier: added on put, exact again after each gc",
}

# Get latency per tier as a log2 histogram of microseconds, kept as plain counters
# (``get_us_local_b12`` counts gets of 2048-4095 µs): cheap to keep, merged like any
# counter, and percentiles can be estimated from them when printing.
LATENCY_TIERS: dict[str, str] = {"local": "local hits", "shared": "shared hits", "miss": "misses"}
BUCKETS = 32  # bucket b holds [2**(b-1), 2**b) µs; bucket 0 is under 1 µs; the last is open
PERCENTILES = (50, 95, 99)
_BUCKET_NAMES = {
    tier: tuple(f"get_us_{tier}_b{b}" for b in range(BUCKETS)) for tier in LATENCY_TIERS
}


class Counters:
    """Thread-safe in-memory counters; ``flush`` moves them into the index."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: Counter[str] = Counter()

    def add(self, name: str, amount: int = 1) -> None:
        assert name in COUNTERS or name in TOTALS, name
        with self._lock:
            self._values[name] += amount

    def observe_get(self, tier: str, elapsed_ns: int) -> None:
        """Count one get's latency in its tier's histogram (the hot path: one lock, no math)."""
        bucket = min((elapsed_ns // 1000).bit_length(), BUCKETS - 1)
        with self._lock:
            self._values[_BUCKET_NAMES[tier][bucket]] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)

    def flush(self, index: Index) -> None:
        with self._lock:
            values, self._values = self._values, Counter()
        index.add_counters({k: v for k, v in values.items() if k not in TOTALS})
        index.add_counters({k: v for k, v in values.items() if k in TOTALS}, totals=True)


def percentiles(buckets: list[int]) -> dict[int, int]:
    """Estimated PERCENTILES (µs) of a log2 histogram, interpolated inside the bucket.

    Within a factor of two of the truth by construction; {} when it is empty.
    """
    total = sum(buckets)
    result: dict[int, int] = {}
    if not total:
        return result
    for q in PERCENTILES:
        rank, below = q / 100 * total, 0
        for b, count in enumerate(buckets):
            if count and below + count >= rank:
                low, high = (0, 1) if b == 0 else (2 ** (b - 1), 2**b)
                result[q] = round(low + (high - low) * (rank - below) / count)
                break
            below += count
    return result


def read_stats(index: Index) -> dict[str, int]:
    """Every counter (zero when never seen), the live pending-upload count, get latency
    percentiles per tier (``get_local_p95_us``; 0 without data), the time saved and the
    running totals."""
    stored = index.counters()
    result = {name: stored.get(name, 0) for name in COUNTERS}
    result["uploads_pending"] = index.count_pending()
    for tier in LATENCY_TIERS:
        found = percentiles([stored.get(name, 0) for name in _BUCKET_NAMES[tier]])
        for q in PERCENTILES:
            result[f"get_{tier}_p{q}_us"] = found.get(q, 0)
    result["time_saved_ms"] = result["saved_ms_local"] + result["saved_ms_shared"]
    totals = index.counters(totals=True)
    result.update({name: max(0, totals.get(name, 0)) for name in TOTALS})
    return result


def render_stats(values: dict[str, int]) -> list[str]:
    """The human `gocachemgr stats` table: lookups by tier, then everything else."""
    v = values
    lines = [f"{'lookups':<14}{'count':>12}{'bytes':>12}{'p50':>10}{'p95':>10}{'p99':>10}"]
    for tier, label, count, size in (
        ("local", "local hits", v["hits_local"], format_size(v["hit_bytes_local"])),
        ("shared", "shared hits", v["hits_shared"], format_size(v["hit_bytes_shared"])),
        ("miss", "misses", v["misses"], "-"),
    ):
        times = [_micros(v[f"get_{tier}_p{q}_us"]) if count else "-" for q in PERCENTILES]
        lines.append(f"{label:<14}{count:>12,}{size:>12}" + "".join(f"{t:>10}" for t in times))
    lines.append(f"{'all gets':<14}{v['gets']:>12,}")
    lines += [
        "",
        f"time saved     ~{_duration(v['time_saved_ms'])} of go's work "
        f"(local {_duration(v['saved_ms_local'])}, shared {_duration(v['saved_ms_shared'])}; "
        f"summed over actions, so more than wall-clock time in parallel builds)",
        f"puts           {v['puts']:,} ({format_size(v['put_bytes'])})",
        f"uploads        {v['uploads_done']:,} done, {v['uploads_pending']:,} pending, "
        f"{v['uploads_failed']:,} failed ({format_size(v['upload_bytes'])} new on the share)",
        f"prefetch       {v['prefetched']:,} entries ({format_size(v['prefetch_bytes'])}) "
        f"copied ahead of go, {v['prefetch_used']:,} gets answered by them",
        f"damage         {v['corrupt']:,} corrupt shared files quarantined, "
        f"{v['shared_errors']:,} shared I/O errors, {v['degraded_runs']:,} local-only runs",
        f"local tier     ~{format_size(v['local_bytes'])}; gc ran {v['gc_runs']:,} times "
        f"({v['gc_auto_runs']:,} automatic), removed {format_size(v['gc_bytes_removed_local'])}",
        f"builds         gocachemgr build: {v['builds_hit_local']:,} local hits, "
        f"{v['builds_hit_shared']:,} shared hits, {v['builds_miss']:,} ran go",
        f"modules        {v['modules_published']:,} versions published "
        f"({format_size(v['module_bytes_published'])}), {v['modules_publish_failed']:,} failed",
    ]
    return lines


def _micros(us: int) -> str:
    if us < 1000:
        return f"{us} µs"
    return f"{us / 1000:.1f} ms" if us < 1_000_000 else f"{us / 1_000_000:.2f} s"


def _duration(ms: int) -> str:
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
