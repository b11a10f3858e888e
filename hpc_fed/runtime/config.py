"""The `output` and `checkpoint` sections: the run directory, what goes into it, and how a run
continues after a stop (hpc_fed/runs/rundir.py, hpc_fed/runtime/checkpoint.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Dict, List, Literal

from hpc_fed.errors import require
from hpc_fed.runtime.owned import KINDS
from hpc_fed.runtime.tracking import TRACKERS, check_trackers


@dataclass
class OutputConfig:
    """The run directory and what goes into it (docs/failures.md, "The run directory")."""

    dir: str = ""
    """Run directory ("": runs/run-<timestamp>)."""
    save_adapter: bool = True
    """Save the final global adapter (peft format) to adapter/ in the run directory."""
    tags: Dict[str, str] = field(default_factory=dict)
    """Free labels copied into results.json (the benchmark sets dataset, scenario, setting,
    method, seed; `hpc-fed report` groups by them)."""
    overwrite: bool = False
    """Reuse a directory that holds a finished run (results.json) or an unfinished one: its
    results, adapter and checkpoints are replaced once the new run has started. Without it such a
    directory is refused (a finished run) or continued (checkpoint.resume). Only a directory
    hpc_fed wrote for the same output.kind is ever reused (hpc_fed/runtime/owned.py)."""
    kind: Annotated[str, Literal[tuple(KINDS)]] = "run"
    """What writes the directory, recorded in its hpc_fed.json: run, eval (set by hpc-fed eval) or
    bench (set by hpc-fed bench). A directory of one kind is never written by another."""
    report_to: List[Annotated[str, Literal[tuple(TRACKERS)]]] = field(default_factory=list)
    """Experiment trackers that also get the config and each round's metrics (rank 0), each an
    optional extra (hpc_fed/runtime/tracking.py)."""

    def check(self) -> None:
        check_trackers(self.report_to)


@dataclass
class CheckpointConfig:
    """Checkpoints of a run, and how it continues after a stop (docs/failures.md)."""

    every: int = 1
    """Rounds between checkpoints (0: none; a clean stop always writes one)."""
    keep: int = 2
    """Newest checkpoints kept; all are removed when the run finishes."""
    resume: bool = True
    """Continue from the newest checkpoint in output.dir (running the same command again
    resumes)."""
    allow_changes: List[str] = field(default_factory=list)
    """Config keys that may differ from the checkpoint's when resuming (e.g. [fed.rounds]); any
    other difference, and a different world size, is refused: it would change the results."""
    stop_grace_s: float = 20.0
    """Seconds the round in flight may still take after SIGTERM to finish (and be checkpointed);
    after that it is abandoned and the run continues later from the checkpoint before it. Keep it
    below the sender's kill delay (torchrun's agent: 30 s; SLURM's KillWait: 30 s)."""

    def check(self) -> None:
        require(self.every >= 0, f"checkpoint.every ({self.every}) must be >= 0 (0: only on a stop)")
        require(self.keep >= 1, f"checkpoint.keep ({self.keep}) must be >= 1")
        require(self.stop_grace_s >= 0, f"checkpoint.stop_grace_s ({self.stop_grace_s}) must be >= 0")
