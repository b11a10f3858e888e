"""Strict collectives see the libraries' traffic too: DeepSpeed's ZeRO gathers and
reduce-scatters are counted per op with their tensors' devices, and checked against the backend.

DeepSpeed keeps its own references to torch.distributed's gather and reduce-scatter functions;
a guard installed after it took them would never see ZeRO's traffic. torch.distributed
re-exports distributed_c10d's functions, so a call through either module (or a name imported
from either) must reach the same guarded function."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from distributed_helpers import cpu_choice, spawn, tiny_run_config

from hpc_fed.distributed.collectives import StrictCollectiveError, StrictGuard

# a path the guard takes for installed third-party code (DeepSpeed's comm backend)
LIBRARY_FILE = str(Path(sys.prefix) / "lib" / "site-packages" / "deepspeed" / "comm" / "torch.py")


def _from_library(fn, *args):
    """fn(*args) called from a frame that belongs to LIBRARY_FILE."""
    return eval(compile("fn(*args)", LIBRARY_FILE, "eval"), {"fn": fn, "args": args})


def _checked(guard: StrictGuard, op: str, *tensors):
    return _from_library(lambda: guard.check(op, sys._getframe(1), tensors, {}))


def test_a_library_collective_on_a_cpu_tensor_is_refused_under_nccl():
    guard = StrictGuard("nccl")
    with pytest.raises(StrictCollectiveError, match="nccl needs CUDA tensors") as info:
        _checked(guard, "all_gather_into_tensor", torch.zeros(4), torch.zeros(2))
    assert "deepspeed/comm/torch.py" in str(info.value) and "got a tensor on cpu" in str(info.value)
    assert not guard.library_calls  # refused, not counted


def test_library_collectives_are_counted_per_op_and_device():
    guard = StrictGuard("gloo")
    _checked(guard, "all_gather_into_tensor", torch.zeros(4), torch.zeros(2))
    _checked(guard, "all_gather_into_tensor", torch.zeros(4), torch.zeros(2))
    _checked(guard, "reduce_scatter_tensor", torch.zeros(2), torch.zeros(4))
    _checked(guard, "barrier")
    assert guard.library_calls == {("all_gather_into_tensor", "cpu"): 2,
                                   ("reduce_scatter_tensor", "cpu"): 1, ("barrier", "-"): 1}
    assert guard.library_ops() == {"all_gather_into_tensor": 2, "reduce_scatter_tensor": 1, "barrier": 1}
    assert "4 library collectives" in guard.summary() and "all_gather_into_tensor 2" in guard.summary()


def _spellings_worker(rank, world, out_dir):
    import torch.distributed as dist
    from deepspeed.comm import comm as ds_comm
    from torch.distributed import all_reduce as imported
    from torch.distributed.distributed_c10d import broadcast as imported_c10d

    out = {}
    calls = {
        "dist.distributed_c10d.all_reduce": lambda: dist.distributed_c10d.all_reduce(torch.ones(1)),
        "torch.distributed.distributed_c10d.all_reduce":
            lambda: torch.distributed.distributed_c10d.all_reduce(torch.ones(1)),
        "from torch.distributed import all_reduce": lambda: imported(torch.ones(1)),
        "from distributed_c10d import broadcast": lambda: imported_c10d(torch.ones(1), src=0),
    }
    for spelling, call in calls.items():
        try:
            call()
            out[spelling] = "ran"
        except StrictCollectiveError as exc:
            out[spelling] = str(exc)
    out["same"] = dist.all_reduce is dist.distributed_c10d.all_reduce
    # DeepSpeed's backend called torch's gather and reduce-scatter through references it took
    # in deepspeed.init_distributed: they must be the guarded functions
    out["deepspeed"] = (ds_comm.cdb.all_gather_function is dist.all_gather_into_tensor,
                        ds_comm.cdb.reduce_scatter_function is dist.reduce_scatter_tensor)
    torch.save(out, f"{out_dir}/spell{rank}.pt")


def test_every_spelling_reaches_the_guard(tmp_path):
    spawn(_spellings_worker, 2, tmp_path, str(tmp_path))
    for r in range(2):
        got = torch.load(tmp_path / f"spell{r}.pt")
        for spelling in [k for k in got if k not in ("same", "deepspeed")]:
            assert "called directly from" in got[spelling], (spelling, got[spelling])
            assert "test_strict_library.py" in got[spelling]
        assert got["same"] and got["deepspeed"] == (True, True)


def _zero3_worker(rank, world, model_dir, out_dir):
    from hpc_fed.client.engine import ClientEngine, base_model_loading
    from hpc_fed.data.collate import Collator
    from hpc_fed.data.datasets.easyvqa import load_easyvqa
    from hpc_fed.distributed import build_topology
    from hpc_fed.distributed.collectives import strict_guard
    from hpc_fed.model.loading import apply_lora, load_base_model, load_processor

    cfg = tiny_run_config(model_dir, out_dir, 3, world)
    topo = build_topology(world, cpu_choice())  # one client group of 2 ranks
    torch.manual_seed(0)
    with base_model_loading(topo, cfg.train, torch.float32):
        base = load_base_model(cfg.model, torch.float32)
    engine = ClientEngine(apply_lora(base, cfg.model.lora), topo, cfg.train, torch.float32)
    guard = strict_guard()
    before = dict(guard.library_calls)
    engine.start_client(lr=0.01)
    batch = Collator(load_processor(cfg.model)).train_batch(load_easyvqa("test")[:4])
    for _ in range(2):
        engine.train_micro_batch(batch)
    seen = {k: n - before.get(k, 0) for k, n in guard.library_calls.items() if n > before.get(k, 0)}
    torch.save(seen, f"{out_dir}/zero3_{rank}.pt")


def test_zero3_gathers_and_reduce_scatters_are_seen_with_their_devices(tiny_model_dir, tmp_path):
    spawn(_zero3_worker, 2, tmp_path, tiny_model_dir, str(tmp_path))
    for r in range(2):
        seen = torch.load(tmp_path / f"zero3_{r}.pt")
        # forward and backward gather each partitioned module's parameters; the gradients are
        # reduce-scattered to their owners: every one on the CPU tensors gloo moves
        assert seen.get(("all_gather_into_tensor", "cpu"), 0) > 0, seen
        assert seen.get(("reduce_scatter_tensor", "cpu"), 0) > 0, seen
        assert {device for _, device in seen} <= {"cpu", "-"}, seen
