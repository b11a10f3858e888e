"""The package's import graph has no cycle (a lazy import inside a function counts too; only
`if TYPE_CHECKING:` imports, which never run, are left out)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "hpc_fed"


def import_graph(root: Path) -> dict[str, set[str]]:
    """module -> the package modules it imports (anywhere in its body)."""
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph = {m: set() for m in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
                for n in ast.walk(node)}
        base = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if node.level:
                    up = base.split(".")[:len(base.split(".")) - node.level + 1]
                    module = ".".join([*up, module] if module else up)
                targets = [module, *(f"{module}.{a.name}" for a in node.names)]
            else:
                continue
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_in_the_package():
    assert cycles(import_graph(PACKAGE)) == []


def test_the_cycle_finder_finds_one(tmp_path):
    pkg = tmp_path / "p"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from p import b\n")
    (pkg / "b.py").write_text("def f():\n    from p.a import x\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from p import a\n")
    (pkg / "d.py").write_text("from . import c\n")
    assert cycles(import_graph(pkg)) == [["p.a", "p.b"]]


ROOT = PACKAGE.parent


def unresolved_imports(files, root: Path = ROOT) -> list[str]:
    """`from hpc_fed.x import name` statements (at any depth, lazy ones included) whose module or
    name does not exist: a moved function otherwise surfaces only when that code path runs."""
    import importlib.util

    bad = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.ImportFrom) and node.level == 0
                    and (node.module or "").split(".")[0] == "hpc_fed"):
                continue
            where = f"{path.relative_to(root)}:{node.lineno}"
            try:
                module = importlib.import_module(node.module)
            except ImportError as e:
                bad.append(f"{where}: {node.module} ({e})")
                continue
            for alias in node.names:
                if not hasattr(module, alias.name) and \
                        importlib.util.find_spec(f"{node.module}.{alias.name}") is None:
                    bad.append(f"{where}: {node.module} has no {alias.name}")
    return bad


def test_every_package_import_in_the_code_and_tests_resolves():
    files = [*PACKAGE.rglob("*.py"), *(ROOT / "tests").rglob("*.py"), *(ROOT / "launchers").rglob("*.py")]
    assert unresolved_imports(files) == []


def test_an_import_of_a_moved_name_is_found(tmp_path):
    (tmp_path / "t.py").write_text("def f():\n    from hpc_fed.runs import client_group_size\n"
                                   "    from hpc_fed.config import client_group_size\n")
    assert unresolved_imports([tmp_path / "t.py"], tmp_path) == \
        ["t.py:2: hpc_fed.runs has no client_group_size"]
