"""The run directory: the files that reports, sweeps and users' scripts read.

  config.yaml     the resolved config
  partition.json  per client: number of samples and label histogram
  metrics.jsonl   one JSON object per round (see README, "Run directory")
  results.json    {"initial": metrics or null, "final": metrics, ...}; written last: the run is done
  stopped.json    instead of results.json when the run was asked to stop early (hpc_fed/runtime/stop.py)
  adapter/        the final global adapter, saved by peft (adapter_model.safetensors)

Only rank 0 writes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from hpc_fed.config import RunConfig, to_yaml


def resolve_dir(cfg: RunConfig, comm) -> Path:
    """output.dir, or runs/run-<timestamp> decided on rank 0 and shared with every rank of
    `comm` (the world)."""
    return Path(comm.broadcast_object(cfg.output.dir or f"runs/run-{time.strftime('%Y%m%d-%H%M%S')}",
                                      src=0))


class RunDir:
    def __init__(self, path: Path, is_main: bool):
        self.path = path
        self.is_main = is_main

    @classmethod
    def create(cls, cfg: RunConfig, comm) -> "RunDir":
        """The run's directory, written by rank 0 of `comm` (the world)."""
        run = cls(resolve_dir(cfg, comm), comm.rank == 0)
        if run.is_main:
            run.path.mkdir(parents=True, exist_ok=True)
            (run.path / "config.yaml").write_text(to_yaml(cfg))
            (run.path / "metrics.jsonl").write_text("")
            for stale in ("results.json", "stopped.json"):
                (run.path / stale).unlink(missing_ok=True)
        return run

    def write_json(self, name: str, obj) -> None:
        if self.is_main:
            tmp = self.path / f".{name}.tmp"
            tmp.write_text(json.dumps(obj, indent=2) + "\n")
            tmp.replace(self.path / name)

    def append_metrics(self, row: dict) -> None:
        if self.is_main:
            with open(self.path / "metrics.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")

    @property
    def adapter_dir(self) -> Path:
        return self.path / "adapter"
