import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Every process the tests start (spawned ranks, hpc-fed launch, SLURM jobs) checks that each
# collective goes through hpc_fed.distributed.collectives (see that module).
os.environ["HPC_FED_STRICT_COLLECTIVES"] = "1"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    """A tiny LLaVA built offline without pre-fit (mechanics tests need no accuracy)."""
    from hpc_fed.config import TinyModelConfig
    from hpc_fed.model.build import build_tiny_atomically

    path = tmp_path_factory.mktemp("models") / "tiny"
    build_tiny_atomically(path, TinyModelConfig(prefit_steps=0))
    return str(path)


@pytest.fixture(scope="session")
def processor(tiny_model_dir):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_model_dir)
