"""Backend and device chosen in one place, from `distributed.device` / `distributed.backend`.

  auto (default)  nccl on this rank's GPU (cuda:LOCAL_RANK) when CUDA is visible, gloo on the CPU
                  otherwise
  device=cpu      a CPU run (gloo) on a machine that has GPUs
  backend=gloo    with device cuda: ranks compute on GPUs and communicate through gloo, so
                  several ranks may share one GPU (round-robin); for testing multi-rank runs on
                  a one-GPU machine, where NCCL refuses two ranks on one GPU

NCCL needs one GPU per rank ("Duplicate GPU detected" otherwise), so a node asked for more
ranks than it has visible GPUs is refused before any process starts (`check_node`, called by
`hpc-fed launch`, `hpc-fed prepare` and `hpc-fed sweep`) and again by each rank
(`choose_backend`), with the fix in one line.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

from hpc_fed.distributed.config import DistributedConfig
from hpc_fed.distributed.collectives import install_strict_guard, strict_guard, strict_requested
from hpc_fed.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackendChoice:
    backend: str  # nccl | gloo
    device: torch.device  # where this rank computes
    comm_device: torch.device  # where its collectives move tensors: the GPU under nccl, else CPU


def visible_gpus() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def choose_backend(cfg: DistributedConfig, local_rank: int = 0, local_world: int = 1,
                   gpus: int | None = None) -> BackendChoice:
    """The backend and devices of local rank `local_rank` of `local_world` on a node with `gpus`
    visible GPUs; a ConfigError naming the knob when that cannot work."""
    gpus = visible_gpus() if gpus is None else gpus
    device = cfg.device if cfg.device != "auto" else ("cuda" if gpus > 0 else "cpu")
    if device == "cuda" and gpus == 0:
        raise ConfigError("distributed.device=cuda but no GPU is visible (torch.cuda.is_available() "
                          "is False, or CUDA_VISIBLE_DEVICES is empty); use distributed.device=auto or cpu")
    backend = cfg.backend if cfg.backend != "auto" else ("nccl" if device == "cuda" else "gloo")
    if backend == "nccl" and device == "cpu":
        raise ConfigError("distributed.backend=nccl needs GPUs but distributed.device is cpu (or no "
                          "GPU is visible); use distributed.backend=gloo or auto")
    if device == "cpu":
        return BackendChoice("gloo", torch.device("cpu"), torch.device("cpu"))
    if backend == "nccl" and local_world > gpus:
        raise ConfigError(
            f"{local_world} processes on this node but {gpus} visible GPU(s): NCCL needs one GPU per "
            f"rank; start at most {gpus} per node (hpc-fed launch --nproc {gpus}, NPROC_PER_NODE="
            f"{gpus}), or run on the CPU with distributed.device=cpu")
    gpu = torch.device("cuda", local_rank % gpus)
    return BackendChoice(backend, gpu, gpu if backend == "nccl" else torch.device("cpu"))


def check_node(cfg: DistributedConfig, nproc_per_node: int) -> BackendChoice:
    """Before any process starts: can this node run `nproc_per_node` ranks as configured?"""
    return choose_backend(cfg, 0, nproc_per_node)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stale_extension_locks(max_age_s: float = 600.0) -> list[Path]:
    """Lock files of torch JIT extension builds older than `max_age_s`. DeepSpeed builds a C++
    op for its CPU accelerator on first use (minutes, silently); a build killed midway leaves
    its lock behind and every later start waits for it forever, printing nothing."""
    root = Path(os.environ.get("TORCH_EXTENSIONS_DIR") or Path.home() / ".cache" / "torch_extensions")
    now = time.time()
    found = []
    for lock in [*root.glob("*/lock"), *root.glob("*/*/lock")]:
        try:
            if now - lock.stat().st_mtime > max_age_s:
                found.append(lock)
        except OSError:
            continue
    return found


SHM_COMM_OP = "deepspeed_shm_comm"  # ShareMemCommBuilder.NAME


def skip_shm_comm_op() -> None:
    """Keep DeepSpeed's CPU accelerator from JIT-compiling its shared-memory all-reduce op.

    On the CPU, `deepspeed.init_distributed` compiles a C++ op (`deepspeed_shm_comm`, measured
    1.8-2.7 min on 2 cores, printing nothing until "built successfully") on first use. Only
    `inference_all_reduce` uses it (DeepSpeed's tensor-parallel inference kernels, which hpc_fed
    never runs); every training collective goes through torch.distributed. Marking the op
    incompatible makes DeepSpeed skip the build (`build_shm_op` returns None) and fall back to
    torch.distributed for anything that would have used it."""
    import deepspeed.ops

    deepspeed.ops.__compatible_ops__[SHM_COMM_OP] = False


def elastic_store(timeout: timedelta):
    """The job's c10d store for this attempt of a torchrun worker group.

    torchrun keeps one store for all attempts; its workers' env:// rendezvous uses it without a
    prefix, so after a restart (--max-restarts) the new ranks read the dead ranks' gloo addresses
    and NCCL ids and fail to connect ("connectFullMesh failed ... Connection refused", measured
    with torch 2.13). Each attempt gets its own key space here."""
    host, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True":  # the agent hosts the store
        base = dist.TCPStore(host, port, world_size=world, is_master=False, timeout=timeout)
    else:
        base = dist.TCPStore(host, port, world_size=world, is_master=rank == 0, timeout=timeout,
                             multi_tenant=True)
    return dist.PrefixStore(f"hpc_fed/attempt-{os.environ['TORCHELASTIC_RESTART_COUNT']}", base)


def init_distributed(cfg: DistributedConfig, init_method: str = "env://") -> BackendChoice:
    """Join the torch.distributed world that torchrun describes, or form a world of one.

    Run without torchrun (no RANK/WORLD_SIZE in the environment), it becomes a world of 1 so
    the same code path, collectives included, serves `hpc-fed train` on a laptop or one GPU.
    The process group is bound to this rank's GPU (`device_id`), so NCCL never guesses it.
    """
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        os.environ.update({"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0",
                           "LOCAL_WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1"})
        os.environ.setdefault("MASTER_PORT", str(_free_port()))
    choice = choose_backend(cfg, int(os.environ.get("LOCAL_RANK", "0")),
                            int(os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"])))
    if choice.device.type == "cuda":
        torch.cuda.set_device(choice.device)
    if not dist.is_initialized():
        extra = {"device_id": choice.device} if choice.backend == "nccl" else {}
        timeout = timedelta(seconds=cfg.timeout_s)
        if init_method == "env://" and "TORCHELASTIC_RESTART_COUNT" in os.environ:
            extra["store"] = elastic_store(timeout)
        else:
            extra["init_method"] = init_method
        dist.init_process_group(choice.backend, timeout=timeout, rank=int(os.environ["RANK"]),
                                world_size=int(os.environ["WORLD_SIZE"]), **extra)
    if os.environ.get("LOCAL_RANK", "0") == "0":
        for lock in stale_extension_locks():
            log.warning("hpc-fed: %s is a lock left by a killed JIT build of a C++ op; DeepSpeed will "
                        "wait for it forever: remove it (rm %s) if no build is running", lock, lock)
    if strict_requested():  # before DeepSpeed's backend keeps references to torch's collectives
        install_strict_guard(choice.backend)
    # DeepSpeed's accelerator is the device chosen here; named, it is not guessed (which warns
    # "Setting accelerator to CPU..." on every rank of every CPU run)
    os.environ.setdefault("DS_ACCELERATOR", choice.device.type)
    import deepspeed  # imported late: slow, and not needed for config errors

    skip_shm_comm_op()
    deepspeed.init_distributed(dist_backend=choice.backend)  # adopts the group created above
    return choice


def shutdown() -> str | None:
    """Leave the process group; returns the strict-mode summary when strict mode was on."""
    guard = strict_guard()
    if dist.is_initialized():
        dist.destroy_process_group()
    return guard.summary() if guard is not None else None


def exit_process(code: int) -> None:
    """End a rank's process with `code` once its run is over and its process group destroyed,
    without the interpreter's teardown: there, gloo's worker threads can still hold work whose
    tensors need the GIL, and the process aborts (SIGABRT, "terminate called without an active
    exception"; pytorch/pytorch#179291). Seen once in CI on a rank whose run had completed,
    which torchrun would report as a failed (and, with --max-restarts, restarted) run. Logs and
    the standard streams are flushed first; every file of the run is closed before this."""
    import sys

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
