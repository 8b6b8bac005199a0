"""The package's layout: no import cycles among edge_mnv2's modules, and no module over 400 lines.

Both are read from the source with ``ast`` (nothing is imported), so they run without TVM.
"""

from __future__ import annotations

import ast
from pathlib import Path

import edge_mnv2

PACKAGE_DIR = Path(edge_mnv2.__file__).parent
MAX_LINES = 400


def module_files(root: Path = PACKAGE_DIR) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the package (a package is its ``__init__.py``)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = (root.name, *path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _absolute(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The absolute name a (possibly relative) ``from`` import refers to."""
    if level == 0:
        return name or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, name] if name else base)


def imported_modules(module: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``module`` imports anywhere in its file, function bodies included.

    ``from a.b import c`` is an import of ``a.b.c`` when that is a module, else of ``a.b``. Importing
    ``a.b.c`` also runs ``a/b/__init__.py``, but that implicit edge is left out: it is not a choice the
    importing module makes, and counting it would make every package's ``__init__`` part of a cycle.
    """
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, is_package, node.level, node.module)
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {m for m in found if m in known and m != module}


def import_graph(root: Path = PACKAGE_DIR) -> dict[str, set[str]]:
    """Module -> the package's modules it imports."""
    files = module_files(root)
    return {m: imported_modules(m, p, set(files)) for m, p in files.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[tuple[list[str], list[str]]]:
    """Per strongly connected component: one cycle (in import order, the first module repeated at the end)
    and all the component's modules (a longer cycle may pass through more than the one shown)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(v: str) -> None:  # Tarjan's algorithm; the graph has ~100 nodes, recursion is fine
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return [(_cycle_in(graph, c), sorted(c)) for c in components]


def _cycle_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle through the component's first module (breadth-first within the component)."""
    start = min(component)
    previous = {start: None}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & component):
                if w == start:
                    path = [v]
                    while previous[path[-1]] is not None:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if w not in previous:
                    previous[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"{sorted(component)} is not strongly connected")


def test_no_import_cycles():
    cycles = find_cycles(import_graph())
    assert not cycles, (
        "import cycles among edge_mnv2's modules (move the shared piece to the module it belongs "
        "to):\n" + "\n".join(f"{' -> '.join(cycle)} (in the cycles: {', '.join(members)})" for cycle, members in cycles)
    )


def test_no_module_over_max_lines():
    long = {m: n for m, p in module_files().items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them by concern): " + ", ".join(
        f"{m} ({n})" for m, n in sorted(long.items())
    )


def test_the_checker_sees_cycles_and_relative_imports(tmp_path):
    """The graph follows imports inside functions and relative ones, so a cycle hidden that way is found."""
    pkg = tmp_path / "edge_mnv2"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from .b import thing\n")
    (pkg / "a.py").write_text("def f():\n    from edge_mnv2.sub import b\n")
    (pkg / "sub" / "b.py").write_text("from .. import a\nthing = 1\n")
    (pkg / "c.py").write_text("import edge_mnv2.sub.b\nfrom edge_mnv2.sub import thing\n")
    graph = import_graph(pkg)
    assert graph == {
        "edge_mnv2": set(),
        "edge_mnv2.sub": {"edge_mnv2.sub.b"},
        "edge_mnv2.a": {"edge_mnv2.sub.b"},
        "edge_mnv2.sub.b": {"edge_mnv2.a"},
        "edge_mnv2.c": {"edge_mnv2.sub.b", "edge_mnv2.sub"},
    }
    assert find_cycles(graph) == [
        (["edge_mnv2.a", "edge_mnv2.sub.b", "edge_mnv2.a"], ["edge_mnv2.a", "edge_mnv2.sub.b"])
    ]
