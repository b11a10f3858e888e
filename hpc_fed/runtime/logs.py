"""What each rank logs: rank 0 at INFO, the others at WARNING, every line tagged with its rank,
and the libraries' own progress bars, info lines and deprecation notices kept off the console."""

from __future__ import annotations

import logging
import os
import warnings

from hpc_fed.errors import DEBUG_ENV


def setup_logging(rank: int) -> None:
    """Rank 0 logs at INFO and the others at WARNING, each line tagged with the rank."""
    level = logging.INFO if rank == 0 else logging.WARNING
    logging.basicConfig(level=level, format=f"[rank {rank}] %(asctime)s %(message)s",
                        datefmt="%H:%M:%S", force=True)
    for noisy in ("DeepSpeed", "deepspeed", "torch.distributed", "transformers", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    quiet_libraries()


def quiet_libraries() -> None:
    """transformers' and datasets' progress bars and info lines, and the libraries' deprecation notices about
    their own code, are not shown (HPC_FED_DEBUG=1 keeps the warnings)."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # "Loading weights" bars, once per rank and model load
    import datasets

    datasets.disable_progress_bars()  # "Generating train split", "Map": once per rank and file
    datasets.logging.set_verbosity_error()
    if not os.environ.get(DEBUG_ENV):
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
