"""The rank layout: backend choice, process-group setup and client groups."""

from hpc_fed.distributed.backend import choose_backend, init_distributed
from hpc_fed.distributed.topology import Topology, build_topology

__all__ = ["choose_backend", "init_distributed", "Topology", "build_topology"]
