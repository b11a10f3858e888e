"""The rank layout: backend choice, process-group setup, client groups, and the collectives."""

from hpc_fed.distributed.backend import (BackendChoice, check_node, choose_backend, exit_process,
                                      init_distributed, shutdown)
from hpc_fed.distributed.collectives import Comm, LocalComm
from hpc_fed.distributed.topology import Topology, build_topology

__all__ = ["BackendChoice", "check_node", "choose_backend", "init_distributed", "shutdown",
           "exit_process", "Comm",
           "LocalComm", "Topology", "build_topology"]
