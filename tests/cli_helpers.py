"""Shared by the tests that run the CLI: the repository root, a tiny run, a 2-entry matrix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
QUICK = str(ROOT / "configs" / "quickstart.yaml")
SMOKE = str(ROOT / "configs" / "benchmark" / "smoke.yaml")
TINY = ["fed.rounds=1", "train.local_steps=2", "train.micro_batch_size=4", "data.max_train_samples=64",
        "data.max_test_samples=16", "eval.batch_size=16", "fed.sample_clients=2", "eval.initial=false",
        "output.save_adapter=false"]


def cli(*args, env=None, timeout=300, cpus=None):
    """`python -m hpc_fed.cli ARGS` from the repository root (on the CPUs `cpus` only, if given)."""
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    return subprocess.run([sys.executable, "-m", "hpc_fed.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})}, preexec_fn=pin)


def tiny_matrix(tmp_path: Path, model_dir: str, nproc: int = 1) -> Path:
    """A 2-entry matrix (FedAvg and FedProx, memes, missing beta 0.5) on the tiny model."""
    spec = {"name": "tiny", "base": QUICK, "output_root": str(tmp_path / "bench"), "nproc": nproc,
            "overrides": [f"model.path={model_dir}", "data.name=easyvqa_memes", *TINY],
            "datasets": {"memes": []}, "scenarios": {"missing": {"key": "data.beta", "values": [0.5]}},
            "methods": {"FedAvg": ["fed.algorithm=fedavg"], "FedProx": ["fed.algorithm=fedprox"]}}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path
