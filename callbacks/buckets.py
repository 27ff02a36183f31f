"""The fixed latency histogram of the roll-ups: bucket bounds in milliseconds.

Roughly log-spaced from 1 ms to 60 s, so a percentile read from it is off by at most one
bucket's width, about a third of the value. Changing the bounds needs a migration and
makes old rows unreadable: add buckets at the end only.
"""

import bisect

# Upper bounds (inclusive) of each bucket; one more bucket above the last bound.
BOUNDS_MS = (
    1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700,
    1000, 1500, 2000, 3000, 5000, 7000, 10000, 15000, 20000, 30000, 60000,
)  # fmt: skip
BUCKET_COUNT = len(BOUNDS_MS) + 1
BUCKET_FIELDS = tuple(f"h{i:02d}" for i in range(BUCKET_COUNT))


def bucket_index(duration_ms: float) -> int:
    return bisect.bisect_left(BOUNDS_MS, duration_ms)


def bucket_range(index: int, max_ms: float) -> tuple[float, float]:
    """(lower, upper) of a bucket; the open top bucket ends at the largest value seen."""
    lower = 0.0 if index == 0 else float(BOUNDS_MS[index - 1])
    upper = float(BOUNDS_MS[index]) if index < len(BOUNDS_MS) else max(max_ms, lower)
    return lower, upper


def percentile(counts: list[int], q: float, max_ms: float) -> float | None:
    """The q-quantile (0..1), interpolated linearly inside the bucket that holds it."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            lower, upper = bucket_range(index, max_ms)
            # The largest value seen bounds every bucket: it narrows the one holding the top.
            upper = max(min(upper, max_ms), lower)
            return lower + (upper - lower) * max(rank - seen, 0) / count
        seen += count
    return float(max_ms)
