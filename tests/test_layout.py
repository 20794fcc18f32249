"""The layout's rules, checked on the source, transitively (docs/architecture.md says why).

A module's *closure* is every project module that importing it runs: what it imports, at any
depth of the file (lazily or not), what those import in turn, and the packages on the way
(``import bench.results.reportline`` runs ``bench/__init__.py`` and ``bench/results/__init__.py``
first). Each layer's rule holds for the whole closure, so that a layer cannot reach what it may
not import through a module it may:

- ``handler/*.py`` is what ships to Lambda: its closure is ``handler/*.py``;
- the schema (``bench/results/``) stands on its own: its closure is the schema and the record
  types it is built from (``bench.records``, ``bench.latency``, ``bench.stats``);
- ``reports`` imports only the schema, and reaches nothing beyond it;
- ``handler/local``, ``handler/aws`` and the command packages under ``handler/`` reach
  ``handler``, ``bench.cli`` (argument types) and the schema, nothing else of the project;
- ``bench`` never reaches ``reports``; ``training`` reaches neither ``bench`` nor ``reports``;
- no module is much over 400 lines.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT_PACKAGES = ("bench", "handler", "training", "reports")
SCHEMA_BUILT_FROM = ("bench.records", "bench.latency", "bench.stats")
MAX_LINES = 420


@functools.cache
def project_imports(path: Path) -> frozenset[str]:
    """Every project module ``path`` names in an import (at any depth of the file, lazily or not)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return frozenset(name for name in names if name.split(".")[0] in PROJECT_PACKAGES)


def module_file(name: str, root: Path = ROOT) -> Path | None:
    """The file that defines module ``name`` under ``root`` (a package's ``__init__.py``), or None
    (``from bench.results import Gate`` names ``bench.results.Gate``, which is no module)."""
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runs_on_import(name: str, root: Path = ROOT) -> list[str]:
    """The modules that ``import name`` runs itself: each package on the way, then the module."""
    parts = name.split(".")
    prefixes = [".".join(parts[: index + 1]) for index in range(len(parts))]
    return [prefix for prefix in prefixes if module_file(prefix, root) is not None]


def closure(name: str, root: Path = ROOT) -> frozenset[str]:
    """Every project module that importing ``name`` runs, ``name`` and its packages included."""
    return _closure(name, root)


@functools.cache
def _closure(name: str, root: Path) -> frozenset[str]:
    seen: set[str] = set()
    pending = runs_on_import(name, root)
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        path = module_file(current, root)
        assert path is not None
        for imported in project_imports(path):
            pending.extend(runs_on_import(imported, root))
    return frozenset(seen)


def sources(*parts: str, recursive: bool = True) -> list[Path]:
    folder = ROOT.joinpath(*parts)
    return sorted(folder.rglob("*.py") if recursive else folder.glob("*.py"))


def _within(name: str, *prefixes: str) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def offending(paths: list[Path], allowed: Callable[[str], bool], root: Path = ROOT) -> list[str]:
    """For each module in ``paths``, what its closure reaches that ``allowed`` refuses, with the
    chain of imports that reaches it."""
    found = []
    for path in paths:
        name = module_name(path, root)
        for reached in sorted(closure(name, root)):
            if not allowed(reached):
                route = " -> ".join(chain(name, reached, root))
                found.append(f"{path.relative_to(root)} reaches {reached} ({route})")
    return found


def chain(start: str, goal: str, root: Path = ROOT) -> list[str]:
    """The shortest chain of imports from ``start`` to ``goal`` (breadth first), for the message."""
    paths = {module: [module] for module in runs_on_import(start, root)}
    frontier = list(paths)
    while frontier and goal not in paths:
        following = []
        for module in frontier:
            path = module_file(module, root)
            assert path is not None
            for imported in sorted(project_imports(path)):
                for reached in runs_on_import(imported, root):
                    if reached not in paths:
                        paths[reached] = [*paths[module], reached]
                        following.append(reached)
        frontier = following
    return paths.get(goal, [start, "?", goal])


def is_shipped(name: str) -> bool:
    """``handler`` or a module ``handler/*.py``: what the function's zip holds."""
    path = module_file(name)
    return name == "handler" or (path is not None and path.parent == ROOT / "handler")


def in_schema(name: str) -> bool:
    return name == "bench" or _within(name, "bench.results", *SCHEMA_BUILT_FROM)


def test_what_ships_to_lambda_reaches_only_what_ships():
    assert offending(sources("handler", recursive=False), is_shipped) == []


def test_the_schema_stands_on_its_own():
    assert offending(sources("bench", "results"), in_schema) == []


def test_reports_import_only_the_schema_and_reach_nothing_beyond_it():
    direct = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sources("reports")
        for name in sorted(project_imports(path))
        if not _within(name, "reports", "bench.results")
    ]
    assert direct == []
    assert offending(sources("reports"), lambda name: _within(name, "reports") or in_schema(name)) == []


def test_the_emulator_and_the_deployer_reach_handler_the_cli_types_and_the_schema():
    # handler/local, handler/aws and the command packages (serve, deploy, package): every
    # module under handler/ but what ships
    paths = [path for path in sources("handler") if path.parent != ROOT / "handler"]

    def allowed(name: str) -> bool:
        return _within(name, "handler", "bench.cli") or in_schema(name)

    assert offending(paths, allowed) == []


def test_bench_never_reaches_reports_and_training_stands_alone():
    assert offending(sources("bench"), lambda name: not _within(name, "reports")) == []
    assert offending(sources("training"), lambda name: not _within(name, "bench", "reports")) == []


def test_the_rules_catch_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from handler.local import pool\n    import bench.results\n")
    assert project_imports(bad) == {"handler.local", "handler.local.pool", "bench.results"}


def test_the_rules_catch_a_violation_two_imports_away(tmp_path):
    """reports -> the schema -> the emulator: each import allowed on its own, the chain is not."""
    files = {
        "reports/__init__.py": "",
        "reports/page.py": "from bench.results import ReportLine\n",
        "bench/__init__.py": "",
        "bench/results/__init__.py": "from bench.results.kinds import ReportLine\n",
        "bench/results/kinds.py": "def late():\n    from handler.local.reportline import ReportLine\n",
        "handler/__init__.py": "",
        "handler/local/__init__.py": "",
        "handler/local/reportline.py": "import json\n",
    }
    for relative, text in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    assert closure("reports.page", tmp_path) == {
        "reports",
        "reports.page",
        "bench",
        "bench.results",
        "bench.results.kinds",
        "handler",
        "handler.local",
        "handler.local.reportline",
    }
    page = [tmp_path / "reports" / "page.py"]
    assert offending(page, lambda name: _within(name, "reports", "bench"), tmp_path) == [
        "reports/page.py reaches handler (reports.page -> bench.results -> bench.results.kinds -> handler)",
        "reports/page.py reaches handler.local (reports.page -> bench.results -> bench.results.kinds -> "
        "handler.local)",
        "reports/page.py reaches handler.local.reportline (reports.page -> bench.results -> "
        "bench.results.kinds -> handler.local.reportline)",
    ]


@pytest.mark.parametrize("package", PROJECT_PACKAGES)
def test_no_module_is_over_about_400_lines(package):
    long = [
        f"{path.relative_to(ROOT)}: {lines} lines"
        for path in sources(package)
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    ]
    assert long == []
