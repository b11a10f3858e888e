"""The `output` section: the run directory and what goes into it (hpc_fed/runtime/rundir.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict


@dataclass
class OutputConfig:
    dir: str = ""  # run directory; empty: runs/run-<timestamp>
    save_adapter: bool = True
    # Free labels copied into results.json (the benchmark sets dataset, scenario, setting,
    # method, seed; `hpc-fed report` groups by them).
    tags: Dict[str, str] = field(default_factory=dict)

    def check(self) -> None:
        return None  # every value is valid
