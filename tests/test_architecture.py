"""The package's architecture, read from its source with ``ast``: what may import what.

Every module under ``gradcheck/`` is parsed and each of its imports resolved to a
module: ``import gradcheck.x``, ``from gradcheck.x import y`` (to ``gradcheck.x.y``
when that is a submodule, else ``gradcheck.x``), relative imports, at module level
and inside functions alike.

* The **import graph** holds the imports that run: an ``if TYPE_CHECKING:`` block is
  left out (it never executes, and the public ``gradcheck/__init__.py`` names every
  module there for type checkers).  Importing ``gradcheck.a.b`` also runs
  ``gradcheck/a/__init__.py``, but that edge is left out too: a package's
  ``__init__`` is its facade, and counting it would make every module depend on
  everything the facade re-exports.
* The **layer rules** count every import, type-only ones included: annotating with a
  higher layer's type couples the code to it all the same.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import gradcheck

PACKAGE_DIR = Path(gradcheck.__file__).resolve().parent
ROOT = "gradcheck"

#: The longest function body the conventions allow (docstring excluded).
MAX_BODY_LINES = 80


@dataclass(frozen=True)
class Import:
    """One import statement's target, as a module name, where it was written."""

    module: str  # resolved: a gradcheck module, or an outside top-level package ("pytest")
    line: int
    type_only: bool  # inside ``if TYPE_CHECKING:``


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


SOURCES: dict[str, Path] = {_module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}
TREES: dict[str, ast.Module] = {
    name: ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for name, path in SOURCES.items()
}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(node: ast.AST, type_only: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    """Every node under ``node``, with whether it sits in an ``if TYPE_CHECKING:`` body."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for statement in child.body:
                yield statement, True
                yield from _statements(statement, True)
            for statement in child.orelse:
                yield statement, type_only
                yield from _statements(statement, type_only)
            continue
        yield child, type_only
        yield from _statements(child, type_only)


def _resolve(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The modules one import statement of ``module`` names."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:  # relative: from the package that holds ``module``
        is_package = SOURCES[module].name == "__init__.py"
        package = module.split(".")
        if not is_package:
            package.pop()
        base = package[: len(package) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if target != ROOT and not target.startswith(ROOT + "."):
        return [target]
    named = [f"{target}.{alias.name}" for alias in node.names]
    submodules = [name for name in named if name in SOURCES]
    # ``from gradcheck.pkg import sub, func``: the submodule, and the package for the rest.
    return submodules + ([target] if len(submodules) < len(named) else [])


def imports_of(module: str) -> list[Import]:
    found = []
    for node, type_only in _statements(TREES[module]):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for target in _resolve(module, node):
                found.append(Import(target, node.lineno, type_only))
    return found


IMPORTS: dict[str, list[Import]] = {module: imports_of(module) for module in SOURCES}


def _internal(target: str) -> str | None:
    """The gradcheck module an import runs: the longest known prefix of ``target``."""
    parts = target.split(".")
    while parts:
        name = ".".join(parts)
        if name in SOURCES:
            return name
        parts.pop()
    return None


def import_graph() -> dict[str, set[str]]:
    """module -> the gradcheck modules it imports at run time (module level or in functions)."""
    graph: dict[str, set[str]] = {module: set() for module in SOURCES}
    for module, imports in IMPORTS.items():
        for found in imports:
            target = _internal(found.module) if not found.type_only else None
            if target is not None and target != module:
                graph[module].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or None (depth-first search)."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(node: str) -> list[str] | None:
        path.append(node)
        on_path.add(node)
        for target in sorted(graph[node]):
            if target in on_path:
                return path[path.index(target) :] + [target]
            if target not in done:
                cycle = visit(target)
                if cycle:
                    return cycle
        path.pop()
        on_path.discard(node)
        done.add(node)
        return None

    for start in sorted(graph):
        if start not in done:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def _in(module: str, layers: tuple[str, ...]) -> bool:
    return any(module == layer or module.startswith(layer + ".") for layer in layers)


def violations(sources: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    """``file:line imports target`` for every import from ``sources`` into ``forbidden``."""
    found = []
    for module, imports in IMPORTS.items():
        if not _in(module, sources):
            continue
        for imported in imports:
            if _in(imported.module, forbidden):
                where = SOURCES[module].relative_to(PACKAGE_DIR.parent)
                found.append(f"{where}:{imported.line} imports {imported.module}")
    return found


# -- the tests of this file's own machinery ---------------------------------------------------


def test_every_module_is_parsed_and_imports_are_resolved() -> None:
    assert {"gradcheck", "gradcheck.cli", "gradcheck.plugin", "gradcheck.errors"} <= set(SOURCES)
    graph = import_graph()
    # ``from gradcheck.errors import ...`` at module level, and a function-level import.
    assert "gradcheck.errors" in graph["gradcheck.cli"]
    assert "gradcheck.targets" in graph["gradcheck.cli"]  # inside _load_params
    assert all(target in SOURCES for targets in graph.values() for target in targets)


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]


def test_from_package_import_submodule_resolves_to_the_submodule() -> None:
    node = ast.parse("from gradcheck.references import base, nothing").body[0]
    assert isinstance(node, ast.ImportFrom)
    assert _resolve("gradcheck.cli", node) == ["gradcheck.references.base", "gradcheck.references"]
    relative = ast.parse("from .base import Estimate").body[0]
    assert isinstance(relative, ast.ImportFrom)
    assert _resolve("gradcheck.references.noise", relative) == ["gradcheck.references.base"]


# -- the rules --------------------------------------------------------------------------------


def test_no_import_cycles() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_references_never_import_the_model_runner_demo_or_report() -> None:
    found = violations(
        ("gradcheck.references",),
        ("gradcheck.model", "gradcheck.runner", "gradcheck.demo", "gradcheck.report"),
    )
    assert not found, "\n".join(found)


def test_report_never_imports_the_runner_references_or_problem() -> None:
    found = violations(
        ("gradcheck.report",),
        ("gradcheck.runner", "gradcheck.references", "gradcheck.problem"),
    )
    assert not found, "\n".join(found)


CORE = (
    "gradcheck.runner",
    "gradcheck.verdict",
    "gradcheck.references",
    "gradcheck.problem",
    "gradcheck.diagnosis",
    "gradcheck.results",
)


def test_core_never_imports_pytest_hypothesis_or_the_report() -> None:
    found = violations(CORE, ("pytest", "_pytest", "hypothesis", "gradcheck.report"))
    assert not found, "\n".join(found)


def body_length(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines from the first statement after the docstring to the function's last line."""
    body = node.body
    if ast.get_docstring(node) is not None and len(body) > 1:
        body = body[1:]
    first = body[0]
    start = min([first.lineno, *(d.lineno for d in getattr(first, "decorator_list", []))])
    return (node.end_lineno or node.lineno) - start + 1


def long_functions(limit: int = MAX_BODY_LINES) -> list[str]:
    """``file:line name (N lines)`` for every function whose body is over ``limit`` lines."""
    found = []
    for module, tree in TREES.items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = body_length(node)
                if length > limit:
                    where = SOURCES[module].relative_to(PACKAGE_DIR.parent)
                    found.append(f"{where}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_the_length_measure_leaves_the_docstring_out() -> None:
    source = 'def f():\n    """Doc.\n\n    More.\n    """\n' + "    x = 1\n" * 3
    documented = ast.parse(source).body[0]
    plain = ast.parse("def g():\n    @decorator\n    def h():\n        pass\n").body[0]
    assert isinstance(documented, ast.FunctionDef) and isinstance(plain, ast.FunctionDef)
    assert body_length(documented) == 3
    assert body_length(plain) == 3


def test_no_function_body_is_over_80_lines() -> None:
    found = long_functions()
    assert not found, "\n".join(found)
