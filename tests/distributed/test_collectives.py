"""One owner for collectives: hpc_fed.distributed.collectives.

What made every multi-GPU run fail at its first aggregation: collectives called directly on CPU
tensors, which gloo takes and nccl refuses, and skipped in a world of one, so a one-GPU run never
reached them. These tests catch both on the CPU: no collective outside the owner (read from the
source, and refused at run time in strict mode), tensors checked against their Comm's device,
and the same world collectives in a world of one as in a world of two."""

from __future__ import annotations

import ast
from pathlib import Path

import torch
from distributed_helpers import cpu_choice, spawn

from hpc_fed.distributed.collectives import COLLECTIVES, LocalComm

PACKAGE = Path(__file__).parents[2] / "hpc_fed"


OWNER = PACKAGE / "distributed" / "collectives.py"


# the modules a collective can be called through: torch.distributed re-exports distributed_c10d's
DIST_MODULES = ("torch.distributed", "torch.distributed.distributed_c10d")


def _module_aliases(tree: ast.AST) -> set[str]:
    """Names bound to torch.distributed or distributed_c10d: imports, then assignments
    (`d = torch.distributed`, `c10d = dist.distributed_c10d`) until nothing new is bound."""
    aliases = set(DIST_MODULES)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases |= {a.asname for a in node.names if a.name in DIST_MODULES and a.asname}
        elif isinstance(node, ast.ImportFrom) and node.module in ("torch", "torch.distributed"):
            aliases |= {a.asname or a.name for a in node.names
                        if f"{node.module}.{a.name}" in DIST_MODULES}
    assigns = [n for n in ast.walk(tree) if isinstance(n, ast.Assign)]
    while True:
        new = {t.id for n in assigns if _is_module(n.value, aliases)
               for t in n.targets if isinstance(t, ast.Name)} - aliases
        if not new:
            return aliases
        aliases |= new


def _is_module(expr: ast.AST, aliases: set[str]) -> bool:
    return ast.unparse(expr) in aliases or (
        isinstance(expr, ast.Attribute) and expr.attr == "distributed_c10d"
        and _is_module(expr.value, aliases))


def collective_calls(root: Path, skip: Path | None = None) -> list[str]:
    """`file:line spelling` for every collective called, imported or looked up under root,
    through torch.distributed or distributed_c10d, however the module is named."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if skip is not None and path == skip:
            continue
        tree = ast.parse(path.read_text(), str(path))
        aliases = _module_aliases(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in DIST_MODULES:
                found += [f"{path}:{node.lineno} from {node.module} import {a.name}"
                          for a in node.names if a.name in COLLECTIVES]
            elif isinstance(node, ast.Attribute) and node.attr in COLLECTIVES \
                    and _is_module(node.value, aliases):
                found.append(f"{path}:{node.lineno} {ast.unparse(node)}")
            elif isinstance(node, ast.Call) and ast.unparse(node.func) == "getattr" \
                    and len(node.args) >= 2 and _is_module(node.args[0], aliases) \
                    and isinstance(node.args[1], ast.Constant) and node.args[1].value in COLLECTIVES:
                found.append(f"{path}:{node.lineno} {ast.unparse(node)}")
    return found


def test_no_collective_outside_the_owner_module():
    assert collective_calls(PACKAGE, skip=OWNER) == []
    assert collective_calls(OWNER.parent) != []  # the owner itself is found: the scan works


SPELLINGS = {
    "a.py": "import torch.distributed as dist\ndist.all_reduce(x)\n",
    "b.py": "import torch\ntorch.distributed.broadcast(x, 0)\n",
    "c.py": "from torch.distributed import all_gather_object\n",
    "d.py": "from torch import distributed as td\nf = td.barrier\n",
    "e.py": "import torch.distributed as dist\ndist.distributed_c10d.all_reduce(x)\n",
    "f.py": "import torch\ntorch.distributed.distributed_c10d.all_gather_into_tensor(y, x)\n",
    "g.py": "from torch.distributed import all_reduce as ar\n",
    "h.py": "from torch.distributed.distributed_c10d import reduce_scatter_tensor\n",
    "i.py": "from torch.distributed import distributed_c10d as c\nc.broadcast(x, 0)\n",
    "j.py": "import torch.distributed.distributed_c10d as c10d\nc10d.all_reduce(x)\n",
    "k.py": "import torch\nd = torch.distributed\nc = d.distributed_c10d\nc.all_reduce(x)\n",
    "l.py": "import torch.distributed as dist\ngetattr(dist, 'all_reduce')(x)\n",
    "m.py": "import torch.distributed as dist\ndist._all_gather_base(y, x)\n",
}


def test_the_source_scan_finds_every_spelling(tmp_path):
    for name, text in SPELLINGS.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "ok.py").write_text("import torch.distributed as dist\ndist.get_rank()\n"
                                    "dist.distributed_c10d._get_default_store()\nx.all_reduce(y)\n")
    found = collective_calls(tmp_path)
    assert sorted({Path(f.split(":")[0]).name for f in found}) == sorted(SPELLINGS)
    assert len(found) == len(SPELLINGS)


def test_local_comm_is_a_group_of_one():
    comm = LocalComm()
    x = torch.tensor([1.0, 2.0])
    y = comm.all_reduce(x, op="max")
    assert torch.equal(y, x) and y is not x
    assert comm.all_gather_object({"a": 1}) == [{"a": 1}] and comm.broadcast_object("d") == "d"
    assert (comm.rank, comm.size) == (0, 1)


def _strict_worker(rank, world, out_dir):
    import torch.distributed as dist

    from hpc_fed.distributed import build_topology
    from hpc_fed.distributed.collectives import Comm, StrictCollectiveError, strict_guard

    topo = build_topology(1, cpu_choice())
    out = {"guard": strict_guard() is not None}
    # through the owner: placed, reduced, returned on the caller's device, the input untouched
    x = torch.tensor([float(rank + 1)])
    y = topo.world.all_reduce(x)
    out["sum"], out["x"] = float(y), float(x)
    out["max"] = float(topo.world.all_reduce(torch.tensor([float(rank)]), op="max"))
    out["gathered"] = topo.world.all_gather_object(rank * 10)
    out["bcast"] = float(topo.world.broadcast(torch.tensor([float(rank + 5)]), src=1))
    # today's aggregate.py, before this fix: a direct collective on a CPU tensor (under nccl:
    # "No backend type associated with device type cpu"). Refused on every rank before it runs.
    direct = compile("dist.all_reduce(torch.ones(4))", str(PACKAGE / "fed" / "aggregate.py"), "exec")
    try:
        exec(direct, {"dist": dist, "torch": torch})
        out["direct"] = "ran"
    except StrictCollectiveError as exc:
        out["direct"] = str(exc)
    # a Comm whose placement is broken (tensors stay on the CPU while its backend's device is
    # another one): refused by the device check before torch.distributed sees the tensor
    broken = Comm(None, torch.device("meta"), "world")
    broken._place = lambda t: t.detach().clone()
    try:
        broken.all_reduce(torch.ones(2))
        out["device"] = "ran"
    except StrictCollectiveError as exc:
        out["device"] = str(exc)
    out["after"] = float(topo.world.all_reduce(torch.ones(1)))  # the group is still healthy
    torch.save(out, f"{out_dir}/strict{rank}.pt")


def test_strict_mode_refuses_what_nccl_would(tmp_path):
    spawn(_strict_worker, 2, tmp_path, str(tmp_path))
    for r in range(2):
        got = torch.load(tmp_path / f"strict{r}.pt")
        assert got["guard"], "tests/conftest.py turns strict collectives on in every rank"
        assert got["sum"] == 3.0 and got["x"] == r + 1 and got["max"] == 1.0
        assert got["gathered"] == [0, 10] and got["bcast"] == 6.0
        assert "called directly from" in got["direct"] and "fed/aggregate.py:1" in got["direct"]
        assert "tensor on cpu" in got["device"] and "moves tensors on meta" in got["device"]
        assert got["after"] == 2.0


def _world_calls_worker(rank, world, model_dir, out_dir):
    from hpc_fed.config import load_config
    from hpc_fed.distributed import build_topology
    from hpc_fed.distributed.collectives import strict_guard
    from hpc_fed.runs.federated import FederatedRun

    cfg = load_config(None, [
        f"model.path={model_dir}", "model.lora.r=4", "data.max_train_samples=48",
        "data.max_test_samples=8", "fed.rounds=2", "fed.num_clients=4", "fed.sample_clients=2",
        "train.local_steps=1", "train.micro_batch_size=4", "eval.every=1", "eval.batch_size=8",
        f"output.dir={out_dir}/run", "output.save_adapter=true", "fed.algorithm=scaffold",
        "train.optimizer=sgd"])
    guard = strict_guard()
    before = len(guard.owner_calls)
    FederatedRun(cfg, build_topology(1, cpu_choice())).run()
    torch.save([c for c in guard.owner_calls[before:] if c[1] == "world"], f"{out_dir}/calls{rank}.pt")


def test_a_world_of_one_runs_the_same_world_collectives_as_a_world_of_two(tiny_model_dir, tmp_path):
    """No `world_size > 1` shortcut: a one-GPU run exercises every collective a cluster run does."""
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    spawn(_world_calls_worker, 1, one, tiny_model_dir, str(one))
    spawn(_world_calls_worker, 2, two, tiny_model_dir, str(two))
    alone = torch.load(one / "calls0.pt")
    assert alone == torch.load(two / "calls0.pt") == torch.load(two / "calls1.pt")
    # run dir name, tiny-model barrier, initial adapter, initial evaluation; per round one
    # payload (SCAFFOLD's control deltas included) and the evaluation totals, between rounds
    # the stop agreement; the barrier after saving the adapter
    assert [op for op, _ in alone] == [
        "broadcast_object_list", "barrier", "broadcast", "all_reduce",
        "all_reduce", "all_reduce", "all_reduce", "all_reduce", "all_reduce", "barrier"]
