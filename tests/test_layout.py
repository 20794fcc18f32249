"""The layout's rules, checked on the source (docs/architecture.md says why):

- ``handler/*.py`` is what ships to Lambda: it imports nothing of ``handler.local``,
  ``handler.aws``, ``bench``, ``training`` or ``reports``;
- ``reports`` imports only the results schema (``bench.results``) of the project;
- ``bench`` never imports ``reports``; ``training`` imports neither ``bench`` nor ``reports``;
- no module is much over 400 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT_PACKAGES = ("bench", "handler", "training", "reports")
MAX_LINES = 420


def project_imports(path: Path) -> set[str]:
    """Every project module ``path`` imports (at any depth of the file, lazily or not)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name.split(".")[0] in PROJECT_PACKAGES}


def sources(*parts: str, recursive: bool = True) -> list[Path]:
    folder = ROOT.joinpath(*parts)
    return sorted(folder.rglob("*.py") if recursive else folder.glob("*.py"))


def offending(paths: list[Path], allowed) -> list[str]:
    return [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in paths
        for name in sorted(project_imports(path))
        if not allowed(name)
    ]


def _within(name: str, *prefixes: str) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def test_what_ships_to_lambda_imports_only_what_ships():
    handler = sources("handler", recursive=False)
    shipped = {f"handler.{path.stem}" for path in handler} | {"handler"}
    assert offending(handler, lambda name: ".".join(name.split(".")[:2]) in shipped) == []


def test_reports_import_only_the_results_schema():
    assert offending(sources("reports"), lambda name: _within(name, "reports", "bench.results")) == []


def test_bench_never_imports_reports_and_training_stands_alone():
    assert offending(sources("bench"), lambda name: not _within(name, "reports")) == []
    assert offending(sources("training"), lambda name: not _within(name, "bench", "reports")) == []


def test_the_rules_catch_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from handler.local import pool\n    import bench.results\n")
    assert project_imports(bad) == {"handler.local", "handler.local.pool", "bench.results"}


@pytest.mark.parametrize("package", PROJECT_PACKAGES)
def test_no_module_is_over_about_400_lines(package):
    long = [
        f"{path.relative_to(ROOT)}: {lines} lines"
        for path in sources(package)
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    ]
    assert long == []
