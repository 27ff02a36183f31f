"""Helpers for the browser tests: full-page screenshots kept in tests/artifacts/."""

from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def screenshot(page, name: str) -> Path:
    """Saves a full-page screenshot as tests/artifacts/<name>.png and returns its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
