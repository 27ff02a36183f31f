import math
import random

from callbacks.buckets import BOUNDS_MS, BUCKET_COUNT, bucket_index, bucket_range, percentile


def _histogram(values):
    counts = [0] * BUCKET_COUNT
    for value in values:
        counts[bucket_index(value)] += 1
    return counts


def _exact(values, q):
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


def test_bucket_bounds_are_inclusive_upper_bounds():
    assert bucket_index(0) == 0 and bucket_index(1) == 0
    assert bucket_index(1.01) == 1
    assert bucket_index(100) == BOUNDS_MS.index(100)
    assert bucket_index(60001) == BUCKET_COUNT - 1
    assert bucket_range(BUCKET_COUNT - 1, 75000) == (60000.0, 75000.0)


def test_percentile_estimate_lies_in_the_bucket_of_the_exact_value():
    rng = random.Random(7)
    for trial in range(50):
        values = [
            rng.lognormvariate(rng.uniform(1, 8), rng.uniform(0.1, 2)) for _ in range(rng.randint(1, 400))
        ]
        counts, top = _histogram(values), max(values)
        for q in (0.5, 0.9, 0.95, 0.99):
            exact = _exact(values, q)
            lower, upper = bucket_range(bucket_index(exact), top)
            estimate = percentile(counts, q, top)
            assert lower <= estimate <= min(upper, top), (trial, q, exact, estimate)


def test_percentile_of_nothing_is_none():
    assert percentile([0] * BUCKET_COUNT, 0.5, 0) is None
