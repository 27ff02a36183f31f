"""Success-status specs: "200-299", "200,202,204", "200-204,304", or a list like [200, 202].

Stored normalised as text ("200-299"), parsed once per use into a fast membership test.
"""

from functools import lru_cache

DEFAULT = "200-299"


class StatusSpecError(ValueError):
    pass


def normalise(spec) -> str:
    """A spec from the API (string or list of codes) -> its canonical text; raises StatusSpecError."""
    if isinstance(spec, list | tuple):
        if not spec:
            raise StatusSpecError("must list at least one status code")
        parts = []
        for item in spec:
            if isinstance(item, bool) or not isinstance(item, int | str):
                raise StatusSpecError(f"{item!r} is not a status code")
            parts.append(str(item).strip())
        spec = ",".join(parts)
    if not isinstance(spec, str) or not spec.strip():
        raise StatusSpecError('must be a string like "200-299" or a list of status codes')
    ranges = _parse(spec.replace(" ", ""))
    return ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges)


def _parse(spec: str) -> tuple[tuple[int, int], ...]:
    ranges = []
    for part in spec.split(","):
        lo_text, sep, hi_text = part.partition("-")
        try:
            lo = int(lo_text)
            hi = int(hi_text) if sep else lo
        except ValueError:
            raise StatusSpecError(f"{part!r} is not a status code or a range like 200-299") from None
        if not (100 <= lo <= 599 and 100 <= hi <= 599):
            raise StatusSpecError(f"{part!r}: status codes go from 100 to 599")
        if lo > hi:
            raise StatusSpecError(f"{part!r}: the range is backwards")
        ranges.append((lo, hi))
    return tuple(sorted(ranges))


@lru_cache(maxsize=256)
def success_set(spec: str) -> frozenset[int]:
    return frozenset(code for lo, hi in _parse(spec or DEFAULT) for code in range(lo, hi + 1))


def is_success(spec: str, status_code: int) -> bool:
    return status_code in success_set(spec)
