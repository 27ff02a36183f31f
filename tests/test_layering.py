"""Dependencies point down: monitoring reads and exports what the engine writes, so nothing under
callbacks/ imports monitoring; the engine never imports the interfaces (API, admin, commands)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INTERFACES = ("callbacks.api", "callbacks.admin", "callbacks.management", "monitoring")


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def _modules(package: str):
    for path in sorted((ROOT / package.replace(".", "/")).rglob("*.py")):
        if "migrations" not in path.parts:
            yield path


def _offending(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _modules(package)
        for name in sorted(_imports(path))
        if any(name == prefix or name.startswith(prefix + ".") for prefix in forbidden)
    ]


def test_nothing_under_callbacks_imports_monitoring():
    assert _offending("callbacks", ("monitoring",)) == []


def test_the_engine_never_imports_the_interfaces():
    assert _offending("callbacks.delivery", INTERFACES) == []
