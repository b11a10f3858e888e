"""SCAFFOLD's server half: FedAvg on the adapter; the control variate c lives in buffers['c'].

The control-variate math and the client half are in hpc_fed/fed/scaffold.py.
"""

from hpc_fed.fed.server.fedavg import FedAvg


class ScaffoldServer(FedAvg):
    name = "scaffold"
