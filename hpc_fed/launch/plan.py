"""What one launch runs, checked against the world it will get before any process starts.

A launch names either a run config (`configs/quickstart.yaml`, plus overrides) or a benchmark
matrix and an entry index (a SLURM array task). `resolve` turns both into the same `LaunchSpec`:
the run config and overrides `python -m hpc_fed.train` takes. `check_world` refuses a world that
`fed.ranks_per_client` does not divide and says when client groups would span nodes.
Used by `hpc-fed prepare` (slurm/benchmark.sh) and `hpc-fed sweep` (submitit).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from hpc_fed.errors import ConfigError

MATRIX_KEYS = ("base", "datasets", "methods", "scenarios")  # a YAML with one is a benchmark matrix


@dataclass(frozen=True)
class LaunchSpec:
    config: str  # the run config (a matrix entry's base)
    overrides: list[str] = field(default_factory=list)
    name: str = ""  # the matrix entry's name, or the config path
    index: int | None = None  # the matrix entry's index
    done: bool = False  # a matrix entry whose results.json exists

    def train_args(self) -> list[str]:
        """The arguments of `python -m hpc_fed.train`."""
        return ["--config", self.config, *self.overrides]


def is_matrix(path: Path) -> bool:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return False  # load_config or expand reports the problem with its own message
    return isinstance(raw, dict) and any(k in raw for k in MATRIX_KEYS)


def resolve(config: str, index: int | None = None, overrides: list[str] | tuple = ()) -> LaunchSpec:
    """The run behind CONFIG: a run config with overrides, or entry `index` of a matrix."""
    from hpc_fed.benchmark.matrix import expand
    from hpc_fed.config import load_config

    path = Path(config)
    if not path.is_file():
        raise ConfigError(f"config {config} does not exist (working directory {Path.cwd()}); pass a "
                          "run config (configs/*.yaml) or a benchmark matrix (configs/benchmark/*.yaml), "
                          "relative to the directory you submit from")
    if not is_matrix(path):
        if index is not None:
            raise ConfigError(f"{config} is a run config, not a benchmark matrix, so it has no entry "
                              f"{index}; job arrays (sbatch --array, SLURM_ARRAY_TASK_ID) need a matrix "
                              "such as configs/benchmark/smoke.yaml")
        load_config(config, list(overrides))  # typos and bad values fail here, before any process
        return LaunchSpec(config, list(overrides), name=config)
    matrix = expand(path)
    n = len(matrix.entries)
    if index is None:
        raise ConfigError(f"{config} is a benchmark matrix of {n} entries: name one with --index I, "
                          f"or submit them all: sbatch --array=0-{n - 1} slurm/benchmark.sh, or "
                          f"hpc-fed sweep {config}; `hpc-fed sweep --list {config}` shows the indices")
    if not 0 <= index < n:
        raise ConfigError(f"entry {index} is out of range: {config} has {n} entries (0..{n - 1}); "
                          f"`hpc-fed sweep --list {config}` shows them")
    entry = matrix.entries[index]
    extra = list(overrides)
    if extra:
        load_config(matrix.base, [*entry.overrides, *extra])
    return LaunchSpec(matrix.base, [*entry.overrides, *extra], name=entry.name, index=index,
                      done=entry.done)


def check_world(ranks_per_client: int, nnodes: int, nproc_per_node: int) -> str:
    """One line describing the layout, or a ConfigError when the world cannot be split.

    Ranks are numbered node after node (torchrun), and groups take consecutive ranks, so a group
    stays on one node exactly when ranks_per_client divides the processes per node; a group
    bigger than a node must cover whole nodes.
    """
    from hpc_fed.distributed.topology import num_client_groups

    if nnodes < 1 or nproc_per_node < 1:
        raise ConfigError(f"nodes ({nnodes}) and processes per node ({nproc_per_node}) must be >= 1")
    world = nnodes * nproc_per_node
    groups = num_client_groups(world, ranks_per_client)  # ConfigError naming fed.ranks_per_client
    layout = (f"world {world} = {nnodes} node(s) x {nproc_per_node} process(es) = {groups} client "
              f"group(s) x {ranks_per_client} rank(s)")
    g = ranks_per_client
    if (g <= nproc_per_node and nproc_per_node % g) or (g > nproc_per_node and g % nproc_per_node):
        raise ConfigError(f"fed.ranks_per_client ({g}) would make client groups span nodes unevenly "
                          f"({nproc_per_node} processes per node): choose a divisor of {nproc_per_node} "
                          f"or a multiple of it, so each group's ZeRO traffic stays inside whole nodes")
    return layout


def check_layout(cfg, nnodes: int, nproc_per_node: int, gpus_per_node: int | None = None) -> str:
    """check_world for a run config; the centralized baseline is one group of the whole world
    whatever fed.ranks_per_client says (hpc_fed/runs/centralized.py). With
    `gpus_per_node` known, also the device rule: under NCCL each rank needs its own GPU."""
    from hpc_fed.config import WHOLE_WORLD_BASELINES
    from hpc_fed.distributed.backend import choose_backend

    if cfg.baseline in WHOLE_WORLD_BASELINES:
        world = nnodes * nproc_per_node
        layout = f"world {world} = {nnodes} node(s) x {nproc_per_node} process(es) = 1 client group"
    else:
        layout = check_world(cfg.fed.ranks_per_client, nnodes, nproc_per_node)
    if gpus_per_node is None:
        return layout
    choice = choose_backend(cfg.distributed, 0, nproc_per_node, gpus_per_node)
    where = "CPU" if choice.device.type == "cpu" else f"{gpus_per_node} GPU(s) per node"
    return f"{layout}; {choice.backend} on {where}"


def check_inputs(cfg, world_size: int) -> str | None:
    """What every rank would otherwise fail on alike, checked once before any process starts:
    the model folder (missing, a broken config.json, a text-only model) and the data (files,
    empty splits, clients vs samples, unreadable images), raised as one-line errors; then the
    problem the run would meet in output.dir (a finished run, a checkpoint it cannot continue),
    returned for the caller to phrase, or None."""
    from hpc_fed.data.federated import build_federated_data
    from hpc_fed.model.loading import preflight as model_preflight
    from hpc_fed.runs.rundir import preflight as rundir_preflight

    model_preflight(cfg.model)
    build_federated_data(cfg.data, cfg.fed.num_clients)
    return rundir_preflight(cfg, world_size)
