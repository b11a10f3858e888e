"""One object owns the rank layout: client groups, this rank's place, and DeepSpeed's mpu view.

The world of W ranks is split into W / G client groups of G consecutive ranks (so a group stays
on one node whenever G divides the ranks per node). Each group trains one federated client at a
time with DeepSpeed ZeRO data-parallel over its own process group; only adapter parameters cross
group boundaries, through collectives over the whole world.

The topology hands out the two `Comm`s every collective goes through (hpc_fed/distributed/
collectives.py): `world` (all ranks: aggregation, evaluation totals, stop agreement) and
`client` (this rank's client group: per-client statistics, ZeRO-3 checks).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist

from hpc_fed.distributed.backend import BackendChoice
from hpc_fed.distributed.collectives import Comm
from hpc_fed.errors import ConfigError


@dataclass
class Topology:
    rank: int
    world_size: int
    group_size: int
    num_groups: int
    device: torch.device  # where this rank computes
    backend: str
    world: Comm  # collectives over every rank
    client: Comm  # collectives over this rank's client group
    dp_group: object  # this rank's client-group process group (DeepSpeed data-parallel group)
    self_group: object  # singleton group: DeepSpeed's model-parallel group (size 1)

    @property
    def group_index(self) -> int:
        return self.rank // self.group_size

    @property
    def rank_in_group(self) -> int:
        return self.rank % self.group_size

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_group_leader(self) -> bool:
        return self.rank_in_group == 0

    def group_ranks(self, group_index: int | None = None) -> list[int]:
        g = self.group_index if group_index is None else group_index
        return list(range(g * self.group_size, (g + 1) * self.group_size))

    def mpu(self) -> "GroupMPU":
        return GroupMPU(self)

    def describe(self) -> str:
        return (f"world {self.world_size} = {self.num_groups} client groups x {self.group_size} "
                f"rank(s), backend {self.backend}, device {self.device}, collectives on "
                f"{self.world.device}")


class GroupMPU:
    """The mpu interface DeepSpeed reads: data parallel = the client group, no model parallelism."""

    def __init__(self, topo: Topology):
        self._t = topo

    def get_data_parallel_group(self):
        return self._t.dp_group

    def get_data_parallel_world_size(self) -> int:
        return self._t.group_size

    def get_data_parallel_rank(self) -> int:
        return self._t.rank_in_group

    def get_data_parallel_group_ranks(self) -> list[int]:
        return self._t.group_ranks()

    def get_model_parallel_group(self):
        return self._t.self_group

    def get_model_parallel_world_size(self) -> int:
        return 1

    def get_model_parallel_rank(self) -> int:
        return 0

    get_tensor_model_parallel_group = get_model_parallel_group
    get_tensor_model_parallel_world_size = get_model_parallel_world_size
    get_tensor_model_parallel_rank = get_model_parallel_rank

    def get_tensor_model_parallel_src_rank(self) -> int:
        return self._t.rank

    def get_pipe_parallel_world_size(self) -> int:
        return 1

    def get_pipe_parallel_rank(self) -> int:
        return 0

    def get_pipe_parallel_group(self):
        return self._t.self_group

    get_pipeline_model_parallel_world_size = get_pipe_parallel_world_size
    get_pipeline_model_parallel_rank = get_pipe_parallel_rank
    get_pipeline_model_parallel_group = get_pipe_parallel_group


def num_client_groups(world_size: int, group_size: int) -> int:
    """world_size / group_size, or a ConfigError naming fed.ranks_per_client."""
    if group_size < 1 or world_size % group_size:
        raise ConfigError(
            f"fed.ranks_per_client ({group_size}) does not divide the world size ({world_size}); "
            f"choose a divisor of {world_size} or launch a multiple of {group_size} processes")
    return world_size // group_size


def build_topology(group_size: int, choice: BackendChoice) -> Topology:
    """Create every client group (a collective call: all ranks must call it, in the same order)."""
    if not dist.is_initialized():
        raise RuntimeError("build_topology needs an initialised process group (call init_distributed)")
    rank, world = dist.get_rank(), dist.get_world_size()
    num_groups = num_client_groups(world, group_size)
    dp_group = self_group = None
    for g in range(num_groups):
        ranks = list(range(g * group_size, (g + 1) * group_size))
        pg = dist.new_group(ranks)
        if rank in ranks:
            dp_group = pg
    for r in range(world):
        pg = dist.new_group([r])
        if r == rank:
            self_group = pg
    return Topology(rank=rank, world_size=world, group_size=group_size, num_groups=num_groups,
                    device=choice.device, backend=choice.backend,
                    world=Comm(None, choice.comm_device, "world"),
                    client=Comm(dp_group, choice.comm_device, f"client group {rank // group_size}"),
                    dp_group=dp_group, self_group=self_group)
