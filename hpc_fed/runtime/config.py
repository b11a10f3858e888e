"""The `output` and `checkpoint` sections: the run directory, what goes into it, and how a run
continues after a stop (hpc_fed/runtime/rundir.py, hpc_fed/runtime/checkpoint.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List

from hpc_fed.errors import require


@dataclass
class OutputConfig:
    dir: str = ""  # run directory; empty: runs/run-<timestamp>
    save_adapter: bool = True
    # Free labels copied into results.json (the benchmark sets dataset, scenario, setting,
    # method, seed; `hpc-fed report` groups by them).
    tags: Dict[str, str] = field(default_factory=dict)
    # Reuse a directory that holds a finished run (results.json) or an unfinished one: its
    # results, adapter and checkpoints are replaced once the new run has started. Without it
    # such a directory is refused (a finished run) or continued (checkpoint.resume). Only a
    # directory hpc_fed wrote for the same output.kind is ever reused (hpc_fed/runtime/owned.py).
    overwrite: bool = False
    # What writes the directory, recorded in its hpc_fed.json: run | eval (set by hpc-fed eval) |
    # bench (set by hpc-fed bench). A directory of one kind is never written by another.
    kind: str = "run"
    # Experiment trackers that also get the config and each round's metrics (rank 0):
    # tensorboard | wandb | mlflow | trackio (each an optional extra; hpc_fed/runtime/tracking.py)
    report_to: List[str] = field(default_factory=list)

    def check(self) -> None:
        from hpc_fed.runtime.owned import KINDS
        from hpc_fed.runtime.tracking import check_trackers

        require(self.kind in KINDS, f"output.kind ({self.kind!r}) must be one of {', '.join(KINDS)} "
                "(hpc-fed eval and hpc-fed bench set their own)")
        check_trackers(self.report_to)


@dataclass
class CheckpointConfig:
    every: int = 1  # rounds between checkpoints (0: none; a clean stop always writes one)
    keep: int = 2  # newest checkpoints kept; all are removed when the run finishes
    # Continue from the newest checkpoint in output.dir (running the same command again resumes)
    resume: bool = True
    # Config keys that may differ from the checkpoint's when resuming (e.g. [fed.rounds]); any
    # other difference, and a different world_size, is refused: it would change the results.
    allow_changes: List[str] = field(default_factory=list)
    # After SIGTERM the round in flight may still finish (and be checkpointed) within this many
    # seconds; after that it is abandoned and the run continues later from the checkpoint before
    # it. Keep it below the sender's kill delay (torchrun's agent: 30 s; SLURM's KillWait: 30 s).
    stop_grace_s: float = 20.0

    def check(self) -> None:
        require(self.every >= 0, f"checkpoint.every ({self.every}) must be >= 0 (0: only on a stop)")
        require(self.keep >= 1, f"checkpoint.keep ({self.keep}) must be >= 1")
        require(self.stop_grace_s >= 0, f"checkpoint.stop_grace_s ({self.stop_grace_s}) must be >= 0")
