"""Dependencies point one way: the domain imports nothing above it, settings only pure domain modules, and
nothing outside the API imports the API."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
ABOVE_THE_DOMAIN = (
    "callbacks.api",
    "callbacks.admin",
    "callbacks.management",
    "callbacks.services",
    "callbacks.delivery",
    "callbacks.selectors",
    "monitoring",
)


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def offending(path: Path, prefixes) -> list[str]:
    return sorted(
        name
        for name in imported_modules(path)
        if any(name == p or name.startswith(p + ".") for p in prefixes)
    )


@pytest.mark.parametrize("path", sorted((ROOT / "callbacks" / "domain").glob("*.py")), ids=lambda p: p.name)
def test_the_domain_imports_nothing_above_it(path):
    assert offending(path, ABOVE_THE_DOMAIN) == []


def test_settings_import_only_pure_domain_modules():
    pure = ("callbacks.domain.bounds", "callbacks.domain.rates")
    for path in (ROOT / "taskcenter" / "settings.py", ROOT / "taskcenter" / "env.py"):
        ours = {name for name in imported_modules(path) if name.startswith("callbacks")}
        assert ours - {"callbacks.domain"} - set(offending(path, pure)) == set(), path.name


def test_only_the_api_imports_the_api():
    api = ROOT / "callbacks" / "api"
    outside = [
        path
        for path in [*(ROOT / "callbacks").rglob("*.py"), *(ROOT / "monitoring").rglob("*.py")]
        if api not in path.parents
    ]
    assert {path.name: offending(path, ("callbacks.api",)) for path in outside} == {
        path.name: [] for path in outside
    }
