import pytest
import torch
from distributed_helpers import cpu_choice, spawn

from hpc_fed.config import DistributedConfig
from hpc_fed.distributed.backend import choose_backend
from hpc_fed.errors import ConfigError


def test_backend_is_nccl_on_gpu_and_gloo_on_cpu():
    auto = DistributedConfig()
    gpu = choose_backend(auto, local_rank=3, local_world=4, gpus=4)
    assert gpu.backend == "nccl" and gpu.device == torch.device("cuda", 3)
    assert gpu.comm_device == gpu.device  # nccl refuses CPU tensors: collectives move on the GPU
    cpu = choose_backend(auto, local_rank=3, local_world=4, gpus=0)
    assert cpu.backend == "gloo" and cpu.device == cpu.comm_device == torch.device("cpu")


def test_a_cpu_run_on_a_gpu_machine_is_asked_for_explicitly():
    c = choose_backend(DistributedConfig(device="cpu"), local_rank=1, local_world=8, gpus=2)
    assert c.backend == "gloo" and c.device == torch.device("cpu")


def test_more_ranks_than_gpus_is_refused_under_nccl_with_the_fix():
    with pytest.raises(ConfigError, match=r"3 processes on this node but 2 visible GPU\(s\).*"
                                          r"--nproc 2.*distributed.device=cpu"):
        choose_backend(DistributedConfig(), local_rank=2, local_world=3, gpus=2)


def test_gloo_on_gpus_lets_ranks_share_a_gpu_and_communicate_through_the_cpu():
    c = choose_backend(DistributedConfig(device="cuda", backend="gloo"), local_rank=3, local_world=4, gpus=2)
    assert c.backend == "gloo" and c.device == torch.device("cuda", 1)
    assert c.comm_device == torch.device("cpu")


def test_impossible_device_requests_name_the_key():
    with pytest.raises(ConfigError, match="distributed.device=cuda"):
        choose_backend(DistributedConfig(device="cuda"), gpus=0)
    with pytest.raises(ConfigError, match="distributed.backend=nccl"):
        choose_backend(DistributedConfig(backend="nccl"), gpus=0)


def _layout_worker(rank, world, out_dir):
    from hpc_fed.distributed import build_topology

    topo = build_topology(2, cpu_choice())
    mpu = topo.mpu()
    # a sum inside the client group sees only the group's ranks
    x = topo.client.all_reduce(torch.tensor([float(rank)]))
    torch.save({"group": topo.group_index, "rig": topo.rank_in_group, "sum": float(x),
                "dp_ranks": mpu.get_data_parallel_group_ranks(),
                "client": (topo.client.rank, topo.client.size),
                "dp_size": mpu.get_data_parallel_world_size(), "mp": mpu.get_model_parallel_world_size()},
               f"{out_dir}/layout{rank}.pt")


def test_four_ranks_form_two_groups_of_consecutive_ranks(tmp_path):
    spawn(_layout_worker, 4, tmp_path, str(tmp_path))
    got = [torch.load(tmp_path / f"layout{r}.pt") for r in range(4)]
    assert [g["group"] for g in got] == [0, 0, 1, 1] and [g["rig"] for g in got] == [0, 1, 0, 1]
    assert [g["sum"] for g in got] == [1.0, 1.0, 5.0, 5.0]
    assert [g["client"] for g in got] == [(0, 2), (1, 2), (0, 2), (1, 2)]
    assert got[2]["dp_ranks"] == [2, 3] and got[0]["dp_size"] == 2 and got[0]["mp"] == 1


def test_a_lock_left_by_a_killed_extension_build_is_found(tmp_path, monkeypatch):
    import os
    import time

    from hpc_fed.distributed.backend import stale_extension_locks

    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    old, fresh = tmp_path / "py311_cpu" / "deepspeed_shm_comm" / "lock", tmp_path / "other" / "lock"
    for lock in (old, fresh):
        lock.parent.mkdir(parents=True)
        lock.touch()
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    assert stale_extension_locks() == [old]  # a build in progress (a fresh lock) is left alone
