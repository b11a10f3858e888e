import torch

from distributed_helpers import spawn
from hpc_fed.distributed.backend import choose_backend


def test_backend_is_nccl_on_gpu_and_gloo_on_cpu():
    gpu = choose_backend(local_rank=3, cuda_available=True)
    assert gpu.backend == "nccl" and gpu.device == torch.device("cuda", 3)
    cpu = choose_backend(local_rank=3, cuda_available=False)
    assert cpu.backend == "gloo" and cpu.device == torch.device("cpu")


def _layout_worker(rank, world, out_dir):
    import torch.distributed as dist

    from hpc_fed.distributed import build_topology

    topo = build_topology(2, torch.device("cpu"), "gloo")
    mpu = topo.mpu()
    # a sum inside the data-parallel group sees only the group's ranks
    x = torch.tensor([float(rank)])
    dist.all_reduce(x, group=mpu.get_data_parallel_group())
    torch.save({"group": topo.group_index, "rig": topo.rank_in_group, "sum": float(x),
                "dp_ranks": mpu.get_data_parallel_group_ranks(),
                "dp_size": mpu.get_data_parallel_world_size(), "mp": mpu.get_model_parallel_world_size()},
               f"{out_dir}/layout{rank}.pt")


def test_four_ranks_form_two_groups_of_consecutive_ranks(tmp_path):
    spawn(_layout_worker, 4, tmp_path, str(tmp_path))
    got = [torch.load(tmp_path / f"layout{r}.pt") for r in range(4)]
    assert [g["group"] for g in got] == [0, 0, 1, 1] and [g["rig"] for g in got] == [0, 1, 0, 1]
    assert [g["sum"] for g in got] == [1.0, 1.0, 5.0, 5.0]
    assert got[2]["dp_ranks"] == [2, 3] and got[0]["dp_size"] == 2 and got[0]["mp"] == 1
