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


# What tells a process it is a rank of a larger world: a test that leaves one of these in the
# test process's environment makes every later `hpc-fed train` it starts wait for ranks that never
# come (a world of one must not inherit RANK=1 WORLD_SIZE=2).
_WORLD_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
              "OMP_NUM_THREADS", "TORCHELASTIC_RESTART_COUNT")


@pytest.fixture(autouse=True)
def _no_world_env_leaks(request):
    before = {key: os.environ.get(key) for key in _WORLD_ENV}
    yield
    leaked = {key: os.environ.get(key) for key in _WORLD_ENV if os.environ.get(key) != before[key]}
    for key, value in before.items():  # restored either way, so one leak fails one test only
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    if leaked:
        pytest.fail(f"{request.node.nodeid} left {leaked} in the test process's environment")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    """A tiny LLaVA built offline without pre-fit (mechanics tests need no accuracy)."""
    from hpc_fed.config import TinyModelConfig
    from hpc_fed.tiny.build import build_tiny_atomically

    path = tmp_path_factory.mktemp("models") / "tiny"
    build_tiny_atomically(path, TinyModelConfig(prefit_steps=0))
    return str(path)


# Pre-fit steps of `prefit_model_dir`: on easy-VQA's open questions they take the tiny model from
# chance to two thirds held-out accuracy (0.67) in under a minute on 2 CPU cores.
PREFIT_STEPS = 120


@pytest.fixture(scope="session")
def prefit_model_dir(tmp_path_factory) -> str:
    """A tiny LLaVA pre-fitted briefly (`hpc-fed make-tiny-model --prefit-steps`): it tells shapes
    and colours apart, so its scores depend on its weights (a random base answers alike whatever
    it is given)."""
    from cli_helpers import cli

    path = tmp_path_factory.mktemp("models") / "tiny-prefit"
    # The build's 2 threads spin-wait for each other by default: on a busy 2-core machine that
    # made it 7x slower (360 s against 51 s); passive waiting gives the same weights.
    proc = cli("make-tiny-model", str(path), "--prefit-steps", str(PREFIT_STEPS), timeout=900,
               env={"OMP_WAIT_POLICY": "PASSIVE"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return str(path)


@pytest.fixture(scope="session")
def processor(tiny_model_dir):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_model_dir)


# --- the quick subset: `pytest -m "not slow"` -----------------------------------------------------
# A test is slow when it starts processes (spawned gloo ranks, the CLI, torchrun, SLURM) or runs a
# model through a whole run; the rest (the math, configs, loaders, collation, scoring on the tiny
# model in process) is the quick subset, for a minute's check while editing.
_PROCESS_HELPERS = ("spawn", "cli", "_hpc_fed", "hpc_fed", "_start", "run_cli")
_SLOW_FIXTURES = {"trained", "models", "prefit_model_dir"}  # fixtures that run the CLI or build models
_SLOW_FILES = {"test_slurm.py"}  # a real SLURM cluster

def pytest_collection_modifyitems(config, items):
    for item in items:
        module = getattr(item, "module", None)
        helpers = set(vars(module)) if module is not None else set()
        source = ""
        try:
            import inspect

            source = inspect.getsource(item.function)
        except (OSError, TypeError):
            pass
        starts_processes = any(f"{h}(" in source for h in _PROCESS_HELPERS if h in helpers)
        slow_fixture = bool(_SLOW_FIXTURES & set(getattr(item, "fixturenames", ())))
        if (starts_processes or slow_fixture or "subprocess" in source or "slow" in item.keywords
                or item.path.name in _SLOW_FILES):
            item.add_marker(pytest.mark.slow)
