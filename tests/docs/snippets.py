"""Code blocks of the docs, found by the marker comment before them (`<!-- snippet: NAME -->`)."""

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def snippet(doc: str, name: str) -> str:
    found = snippets(doc, name)
    assert len(found) == 1, f"{len(found)} snippets {name} in docs/{doc}"
    return found[0] + "\n"


def snippets(doc: str, name: str) -> list[str]:
    """Every block marked with that name, in the order of the page."""
    return re.findall(
        rf"<!-- snippet: {re.escape(name)} -->\n```\w+\n(.*?)\n```", (DOCS / doc).read_text(), re.S
    )
