"""What decides a run's numbers besides its config: recorded in results.json ("provenance").

A rerun of one config can differ from the committed figure when the base model's weights
differ (a tiny model pre-fitted elsewhere), when a rank computes with another thread count
(float sums split over other threads round differently), or when a library changed its
kernels. Each is written down here, so two results can be compared on them first.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import torch

PACKAGES = ("torch", "transformers", "peft", "deepspeed", "datasets", "numpy", "pillow", "hpc_fed")


@lru_cache(maxsize=8)
def base_model_digest(location: str) -> str | None:
    """sha256 of the base model's weight files (a fingerprint for large ones), None for a Hub id."""
    from hpc_fed.model.tiny import weights_digest

    return weights_digest(location) if Path(location).is_dir() else None


def package_version(package: str) -> str | None:
    """The installed version of `package`, None when it is not installed."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def _checkout() -> str | None:
    """The git commit of the hpc_fed checkout ("+dirty" with uncommitted changes), if any."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (head + ("+dirty" if dirty else "")) or None


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(model_location: str, device: torch.device, dtype: torch.dtype) -> dict:
    """The results.json "provenance" object of this rank's run."""
    out = {"base_model": {"location": model_location,
                          "weights_sha256": base_model_digest(model_location)},
           "threads": {"torch": torch.get_num_threads(),
                       "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
           "device": device.type, "dtype": str(dtype).removeprefix("torch."), "cpu": _cpu(),
           "python": sys.version.split()[0],
           "versions": {p: package_version(p) for p in PACKAGES}, "hpc_fed_commit": _checkout()}
    if device.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(device)
        out["versions"]["cuda"] = torch.version.cuda
    return out
