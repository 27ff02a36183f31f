"""Code blocks of the docs, found by the marker comment before them (`<!-- snippet: NAME -->`)."""

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def snippet(doc: str, name: str) -> str:
    text = (DOCS / doc).read_text()
    found = re.search(rf"<!-- snippet: {re.escape(name)} -->\n```\w+\n(.*?)\n```", text, re.S)
    assert found, f"no snippet {name} in docs/{doc}"
    return found.group(1) + "\n"


def blocks(doc: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)\n```", (DOCS / doc).read_text(), re.S)
