"""Figures as operators read them: counts with thousands separated, rates with the precision that
says something, percentages with one decimal, milliseconds with at most one.

The selectors keep three decimals for the API; a page showing "0.123" QPS or "99.5432 %" makes
people read noise. Used by the templates (monitoring.templatetags.figures) and the charts.
"""

DASH = "-"


def count(value) -> str:
    """12345 -> "12,345"."""
    if value is None:
        return DASH
    return f"{int(value):,}"


def rate(value) -> str:
    """Per second: "0", "< 0.01", "0.25", "3.5", "42.5", "1,234"."""
    if value is None:
        return DASH
    value = float(value)
    if value == 0:
        return "0"
    if value < 0.01:
        return "< 0.01"
    if value < 10:
        return _trimmed(f"{value:.2f}")
    if value < 100:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def percent(fraction) -> str:
    """A share of 1 as a percentage: 0.992 -> "99.2 %", 1 -> "100 %". Never rounds up to 100 % nor
    down to 0 % what is not all or nothing: one failure in ten thousand shows as "> 99.9 %"."""
    if fraction is None:
        return DASH
    value = float(fraction) * 100
    if value >= 100:
        return "100 %"
    if value <= 0:
        return "0 %"
    if value > 99.9:
        return "> 99.9 %"
    if value < 0.1:
        return "< 0.1 %"
    return f"{_trimmed(f'{value:.1f}')} %"


def ms(value) -> str:
    """Milliseconds: "0.4 ms", "12 ms", "1,250 ms"."""
    if value is None:
        return DASH
    value = float(value)
    if value < 10:
        return f"{_trimmed(f'{value:.1f}')} ms"
    return f"{value:,.0f} ms"


def axis(value: float) -> str:
    """An axis tick: short ("1.5k", "250", "2.5", "0.25")."""
    if value >= 1000:
        return f"{_trimmed(f'{value / 1000:.1f}')}k"
    if value >= 10 or value == 0:
        return f"{value:.0f}"
    return _trimmed(f"{value:.2f}")


def by_unit(value, unit: str) -> str:
    """A chart's value with its unit, for the hover text."""
    if value is None:
        return "no data"
    if unit == "ms":
        return ms(value)
    if unit == "%":
        return percent(value / 100)
    if unit.endswith("/s"):
        return f"{rate(value)} {unit}"
    return f"{count(value)} {unit}".rstrip()


def _trimmed(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text
