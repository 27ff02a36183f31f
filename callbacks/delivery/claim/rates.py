"""Token buckets for the per-origin and per-share rate limits, kept in the leading dispatcher's
memory: exact because only the leader claims. A new leader starts with full buckets, so a change
of leader allows at most one extra burst (a bucket holds one second's worth, at least one token).
"""

# Rate buckets kept before full (idle) ones are forgotten.
MAX_BUCKETS = 10_000


class RateBuckets:
    """Token buckets by key (an origin, or (origin, tenant id)); time in seconds, from the caller."""

    def __init__(self):
        self._buckets: dict = {}  # key -> (tokens, at, rate)

    def tokens(self, key, rate: float, at: float) -> float:
        capacity = max(1.0, rate)
        bucket = self._buckets.get(key)
        if bucket is None:
            return capacity
        tokens, then, _rate = bucket
        return min(capacity, tokens + max(0.0, at - then) * rate)

    def take(self, key, rate: float, at: float) -> None:
        self._buckets[key] = (self.tokens(key, rate, at) - 1.0, at, rate)

    def drain(self, key, rate: float, at: float) -> None:
        """No tokens at `at`: someone else (a paced lane) spends this rate until then."""
        self._buckets[key] = (0.0, at, rate)

    def wait(self, key, rate: float, at: float) -> float:
        """Seconds until the bucket holds a whole token again."""
        return max(0.0, (1.0 - self.tokens(key, rate, at)) / rate)

    def empty(self, at: float) -> dict:
        """Keys without a whole token now -> seconds until they have one (at the rate last used)."""
        found = {}
        for key, (_tokens, _then, rate) in self._buckets.items():
            if self.tokens(key, rate, at) < 1.0:
                found[key] = self.wait(key, rate, at)
        return found

    def prune(self, at: float) -> None:
        if len(self._buckets) > MAX_BUCKETS:
            self._buckets = {
                key: bucket
                for key, bucket in self._buckets.items()
                if self.tokens(key, bucket[2], at) < max(1.0, bucket[2])
            }
