"""What decides a run's numbers besides its config: recorded in results.json ("provenance").

A rerun of one config can differ from the committed figure when the base model's weights
differ (a tiny model pre-fitted elsewhere), when a rank computes with another thread count
(float sums split over other threads round differently), or when a library changed its
kernels. Each is written down here, so two results can be compared on them first.
"""

from __future__ import annotations

import hashlib
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
    return weights_digest(location) if Path(location).is_dir() else None


def weights_digest(model_dir: str | Path, limit_bytes: int = 2 << 30) -> str:
    """sha256 over a saved model's weight files (*.safetensors, *.bin, in name order); for
    weights over `limit_bytes` (a real model: hashing 15 GB takes minutes) a fingerprint of their
    names and sizes instead, marked "size:"."""
    files = sorted(p for p in Path(model_dir).iterdir() if p.suffix in (".safetensors", ".bin"))
    if not files:
        return ""
    h = hashlib.sha256()
    if sum(p.stat().st_size for p in files) > limit_bytes:
        for p in files:
            h.update(f"{p.name}:{p.stat().st_size};".encode())
        return "size:" + h.hexdigest()
    for p in files:
        with open(p, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
    return h.hexdigest()


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
