"""The package's layers run one way (STYLE.md practice 19): a module imports its own first-level
package or a lower layer, never a sibling of its layer nor a higher one. Lazy imports (inside a
function), `if TYPE_CHECKING:` imports and the module paths a registry hands to
importlib.import_module all count. Optional dependencies are imported only inside a function of
the one module that names them in OPTIONAL.

tests/test_imports.py checks the finer grain: no cycle between modules, even inside a package."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "hpc_fed"

# Bottom -> top. A new first-level package or module must be placed here.
LAYERS = [
    {"errors", "__init__"},
    {"distributed"},             # rank layout, backend, collectives
    {"runtime"},                 # run-directory files, stop, trackers, monitor, timing, logs
    {"model"},                   # loading, roles, interfaces, hub
    {"data"},                    # records, datasets, prompts, collation
    {"fed", "client", "eval"},   # FL math, local training, evaluation (no imports among them)
    {"tiny", "config"},          # the offline tiny model; RunConfig: every section composed
    {"runs"},                    # the kinds of run
    # --- application layer: commands and what only they use ------------------------------------
    {"train", "benchmark"},      # the rank entry; the benchmark matrix
    {"report"},
    {"launch"},
    {"bench"},
    {"apps"},                    # the eval and predict commands
    {"cli"},
    {"__main__"},                # `python -m hpc_fed`
]

# Upward or sideways imports that still exist, each with the move that removes it. This list only
# shrinks: test_known_violations_are_still_there fails on an entry whose import is gone.
KNOWN: dict[tuple[str, str], str] = {}

# Optional dependencies (pyproject extras): imported only inside a function of their one module,
# so that the package loads without them.
OPTIONAL = {
    "wandb": ("hpc_fed.runtime.tracking_process", "extra [wandb]: output.report_to=wandb"),
    "mlflow": ("hpc_fed.runtime.tracking_process", "extra [mlflow]: output.report_to=mlflow"),
    "trackio": ("hpc_fed.runtime.tracking_process", "extra [trackio]: output.report_to=trackio"),
    "torch.utils.tensorboard": ("hpc_fed.runtime.tracking_process",
                                "extra [tensorboard]: torch's SummaryWriter needs the tensorboard package"),
}

TYPE_CHECKING_TESTS = ("TYPE_CHECKING", "typing.TYPE_CHECKING")
REGISTRY_NAME = re.compile(r"(hpc_fed(?:\.\w+)+)(?::\w+)?")


def modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module under the package folder `root`."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports(root: Path) -> list[tuple[str, str, str, str]]:
    """(importer, imported, file:line, kind) for every import in the package; kind is top, lazy
    (inside a function), typing (under TYPE_CHECKING) or registry (a module path given as a string
    in a module that calls importlib.import_module). A package module is named as the deepest
    module the import reaches; another library by its dotted name."""
    mods = modules(root)
    found = []
    for name, path in mods.items():
        source = path.read_text()
        where = str(path.relative_to(root.parent))
        base = name if path.name == "__init__.py" else name.rpartition(".")[0]
        registry = "import_module" in source
        stack = [(ast.parse(source), "top")]
        while stack:
            node, kind = stack.pop()
            for child in ast.iter_child_nodes(node):
                inner = kind
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and kind == "top":
                    inner = "lazy"
                if isinstance(child, ast.If) and ast.unparse(child.test) in TYPE_CHECKING_TESTS:
                    inner = "typing"
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    found += [(name, target, f"{where}:{child.lineno}", inner)
                              for target in targets(child, base, mods)]
                if registry and isinstance(child, ast.Constant) and isinstance(child.value, str):
                    match = REGISTRY_NAME.fullmatch(child.value)
                    if match and match.group(1) in mods:
                        found.append((name, match.group(1), f"{where}:{child.lineno}", "registry"))
                stack.append((child, inner))
    return found


def targets(node: ast.Import | ast.ImportFrom, base: str, mods: dict[str, Path]) -> list[str]:
    """The modules one import statement reaches (`from a import b` reaches a.b when b is a module)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        module = node.module or ""
        if node.level:
            parts = base.split(".")
            up = parts[:len(parts) - node.level + 1]
            module = ".".join([*up, module] if module else up)
        names = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in mods else module
                 for alias in node.names]
    out = []
    for dotted in names:
        parts = dotted.split(".")
        if parts[0] != "hpc_fed":
            out.append(dotted)
            continue
        out.append(next(".".join(parts[:i]) for i in range(len(parts), 0, -1)
                        if ".".join(parts[:i]) in mods))
    return out


def unit(module: str) -> str:
    """The first-level package or module of hpc_fed that `module` belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer(name: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if name in names)


def violations(found) -> dict[tuple[str, str], list[str]]:
    """(importer, imported) -> ["file:line (kind)", ...] for each import that does not go down."""
    out: dict[tuple[str, str], list[str]] = {}
    for src, dst, where, kind in found:
        if not dst.startswith("hpc_fed"):
            continue
        here, there = unit(src), unit(dst)
        if here != there and there != "__init__" and layer(there) >= layer(here):
            hits = out.setdefault((src, dst), [])
            if f"{where} ({kind})" not in hits:
                hits.append(f"{where} ({kind})")
    return out


def test_every_first_level_package_has_a_layer():
    placed = set().union(*LAYERS)
    assert sorted({unit(m) for m in modules(PACKAGE)} - placed) == []


def test_imports_go_down_the_layers():
    new = {pair: hits for pair, hits in violations(imports(PACKAGE)).items() if pair not in KNOWN}
    assert not new, "imports that go up or sideways (move the code down, or the importer up):\n" + \
        "\n".join(f"  {src} -> {dst}: {', '.join(hits)}" for (src, dst), hits in sorted(new.items()))


def test_known_violations_are_still_there():
    """KNOWN only shrinks: delete the line of an import that is gone."""
    assert sorted(set(KNOWN) - set(violations(imports(PACKAGE)))) == []


def test_optional_dependencies_are_imported_lazily_where_listed():
    wrong = []
    for src, dst, where, kind in imports(PACKAGE):
        for library, (home, _reason) in OPTIONAL.items():
            if (dst == library or dst.startswith(library + ".")) and (kind != "lazy" or src != home):
                wrong.append(f"{where}: {dst} ({kind}) outside a function of {home}")
    assert wrong == []


def test_the_checker_sees_lazy_typing_and_registry_imports(tmp_path):
    pkg = tmp_path / "hpc_fed"
    for folder in ("data", "runs", "fed"):
        (pkg / folder).mkdir(parents=True)
        (pkg / folder / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "data" / "x.py").write_text("def f():\n    from hpc_fed.runs import y\n")
    (pkg / "data" / "z.py").write_text("from typing import TYPE_CHECKING\n"
                                       "if TYPE_CHECKING:\n    from hpc_fed.fed import w\n")
    (pkg / "data" / "r.py").write_text("import importlib\nNAMES = {'a': 'hpc_fed.runs.y:main'}\n"
                                       "importlib.import_module(NAMES['a'].split(':')[0])\n")
    (pkg / "runs" / "y.py").write_text("from hpc_fed.data import x\n")
    (pkg / "fed" / "w.py").write_text("import wandb\n")
    found = imports(pkg)
    assert sorted(violations(found)) == [("hpc_fed.data.r", "hpc_fed.runs.y"),
                                         ("hpc_fed.data.x", "hpc_fed.runs.y"),
                                         ("hpc_fed.data.z", "hpc_fed.fed.w")]
    assert violations(found)[("hpc_fed.data.z", "hpc_fed.fed.w")] == ["hpc_fed/data/z.py:3 (typing)"]
    assert ("hpc_fed.fed.w", "wandb", "hpc_fed/fed/w.py:1", "top") in found
