"""Joining the world: no silent C++ build on a fresh machine."""

from __future__ import annotations

import os
import subprocess
import sys

CHILD = """
import deepspeed.comm.comm as ds_comm
from hpc_fed.config import DistributedConfig
from hpc_fed.distributed import init_distributed, shutdown
init_distributed(DistributedConfig(device="cpu"))
print("shm op", ds_comm.cdb.shm_comm_op)
shutdown()
"""


def test_deepspeed_builds_no_cpu_op_on_first_use(tmp_path):
    """A fresh extensions cache stays empty: DeepSpeed's CPU shared-memory op (1.8-2.7 min of
    silent compiling on first use, used only by its inference kernels) is skipped."""
    env = {**os.environ, "TORCH_EXTENSIONS_DIR": str(tmp_path / "ext")}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    proc = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "shm op None" in proc.stdout
    assert "built successfully" not in proc.stdout + proc.stderr
    assert not (tmp_path / "ext").exists() or not any((tmp_path / "ext").rglob("*.so"))
