"""Typed run configuration: dataclass schema <- YAML file <- command-line overrides, validated at load.

Each section lives beside its concept, documents every field with a docstring, states a closed
choice as a Literal built from the registry that implements it (hpc_fed/config/schema.py), and
checks its own other rules:

  model        hpc_fed/model/config.py        data    hpc_fed/data/config.py
  fed          hpc_fed/fed/config.py          train   hpc_fed/client/config.py
  eval         hpc_fed/eval/config.py         output, checkpoint  hpc_fed/runtime/config.py
  distributed  hpc_fed/distributed/config.py  baseline: a run kind of hpc_fed/runs/

This module composes them, and holds the rules that span sections (CROSS_RULES). `load_config`
is the only way a run gets its config. The one rule that needs the world size (divisibility by
`fed.ranks_per_client`) is checked by hpc_fed/launch/plan.py before launch and by the topology
once the process group exists. The reference docs/configuration.md is generated from this schema
(`hpc-fed config docs`, hpc_fed/config/reference.py).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from hpc_fed.client.config import TrainConfig
from hpc_fed.config.schema import check_choices
from hpc_fed.data.config import DataConfig
from hpc_fed.data.registry import DATASETS
from hpc_fed.distributed.config import DistributedConfig
from hpc_fed.errors import ConfigError, require
from hpc_fed.eval.config import EvalConfig
from hpc_fed.fed.config import FedConfig
from hpc_fed.model.config import LoraSettings, ModelConfig, TinyModelConfig
from hpc_fed.runtime.config import CheckpointConfig, OutputConfig

# The kinds of run `baseline` names; hpc_fed/runs/ implements one module each (runs.RUNS, whose keys
# a test holds equal to these). The config owns the names so it need not import the runs.
BASELINES = ("none", "zero_shot", "local", "centralized")
WHOLE_WORLD_BASELINES = ("centralized",)  # one client group of every rank, whatever fed.ranks_per_client


def client_group_size(cfg, world_size: int) -> int:
    """Ranks per client group for this run: the whole world for the centralized baseline."""
    return world_size if cfg.baseline in WHOLE_WORLD_BASELINES else cfg.fed.ranks_per_client


__all__ = ["RunConfig", "ModelConfig", "LoraSettings", "TinyModelConfig", "DataConfig", "FedConfig",
           "TrainConfig", "EvalConfig", "OutputConfig", "CheckpointConfig", "DistributedConfig",
           "load_config", "to_yaml", "to_container", "BASELINES", "WHOLE_WORLD_BASELINES",
           "client_group_size"]


@dataclass
class RunConfig:
    """A run: its sections, and the kind of run."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    fed: FedConfig = field(default_factory=FedConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    baseline: Annotated[str, Literal[BASELINES]] = "none"
    """The kind of run (hpc_fed/runs/): none (federated training), zero_shot (evaluate the base
    model only), local (each client trains alone) or centralized (one model on all the training
    data); zero-shot is read as zero_shot."""


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Merge schema, YAML file and `key=value` overrides into a checked RunConfig.

    A problem is reported where it comes from: the YAML file (with its path) or the command-line
    override (as typed)."""
    cfg = _to_object(_merged(path, overrides))
    resolve(cfg)
    validate(cfg)
    return cfg


def load_model_config(path: str | Path | None = None, overrides: list[str] | None = None) -> ModelConfig:
    """The `model` section of a run config (file and overrides merged and type-checked as
    load_config does), validated alone: what `hpc-fed download` needs on a login node, where the
    run's data (data.root) may not be in place yet."""
    model = _to_object(_merged(path, overrides).model)
    check_choices(model, "model.")
    model.check()
    return model


def _merged(path, overrides):
    merged = OmegaConf.structured(RunConfig)
    if path is not None:
        merged = _merge(merged, _load_yaml(Path(path)), f"in {path}")
    for item in overrides or []:
        merged = _merge(merged, _parse_override(item), f"in the command-line override {item!r}")
    return merged


def _to_object(node):
    try:
        return OmegaConf.to_object(node)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"config key {getattr(exc, 'full_key', None)!r}: {_message(exc)}") from None


def shipped_configs() -> list[str]:
    """The run configs that come with hpc_fed (configs/*.yaml of this checkout), as paths."""
    root = Path(__file__).resolve().parents[2] / "configs"  # hpc_fed/config/__init__.py -> the checkout
    found = sorted(root.glob("*.yaml")) + sorted(root.glob("*/*.yaml"))
    try:
        return [str(p.relative_to(Path.cwd())) for p in found]
    except ValueError:
        return [str(p) for p in found]


def add_config_argument(parser, help: str) -> None:
    """`--config FILE` (or `-c`), the one spelling of every subcommand; the bare positional
    that benchmark / sweep / prepare / data describe took before is still read (not shown)."""
    parser.add_argument("--config", "-c", help=help)
    parser.add_argument("config_positional", nargs="?", help=argparse.SUPPRESS)


def config_argument(args, parser) -> str:
    """The config file given either way (a parser error when missing or given twice). With
    --config, a first key=value that the hidden positional took goes back to the overrides."""
    if args.config_positional and "=" in args.config_positional and hasattr(args, "overrides"):
        args.overrides.insert(0, args.config_positional)
        args.config_positional = None
    given = [c for c in (args.config, args.config_positional) if c]
    if not given:
        parser.error("--config FILE is required")
    if len(given) == 2 and given[0] != given[1]:
        parser.error(f"two configs given ({given[0]} and {given[1]}); pass one, with --config")
    return given[0]


def require_config(path: str | None, command: str, adapter: str | None = None) -> str:
    """`--config` of a command that runs training: running built-in defaults silently (10 rounds,
    minutes of work, settings nobody chose) is refused, naming the shipped configs. Given a saved
    `adapter` (a run's adapter/ folder), the run's own config.yaml beside it stands in."""
    if path:
        return path
    if adapter and (own := Path(adapter).resolve().parent / "config.yaml").is_file():
        return str(own)
    runs = [c for c in shipped_configs() if "/benchmark/" not in c.replace("\\", "/")]
    raise ConfigError(f"{command} needs --config CONFIG.yaml (the run's settings); shipped: "
                      f"{', '.join(runs) or 'configs/quickstart.yaml'}, e.g. `{command} --config "
                      f"{runs[0] if runs else 'configs/quickstart.yaml'}`")


def _message(exc: OmegaConfBaseException) -> str:
    return str(getattr(exc, "msg", None) or exc).splitlines()[0]


def _load_yaml(path: Path):
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; pass an existing YAML file")
    try:
        return OmegaConf.load(path)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}: "
                          f"{getattr(exc, 'problem', None) or exc}") from None


def _parse_override(item: str):
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not key=value; write e.g. fed.rounds=3")
    try:
        return OmegaConf.from_dotlist([item])
    except (yaml.YAMLError, OmegaConfBaseException) as exc:
        problem = getattr(exc, "problem", None) or _message(exc)
        raise ConfigError(f"command-line override {item!r} is not valid YAML ({problem}); quote it "
                          "for the shell and close every bracket, e.g. 'train.deepspeed={zero_optimization: "
                          "{stage3_param_persistence_threshold: 0}}'") from None


def _merge(base, extra, where: str):
    _refuse_colon_keys(OmegaConf.to_container(extra), [], where)
    try:
        return OmegaConf.merge(base, extra)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None)
        raise ConfigError(f"config key {key!r} {where}: {_message(exc)}; every key and its type: "
                          "`hpc-fed config fields` or docs/configuration.md") from None


def _refuse_colon_keys(node, path: list[str], where: str) -> None:
    """`{stage:3}` is valid YAML for the key "stage:3" with no value: never what was meant."""
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(k, str) and ":" in k and v is None:
                fixed = k.replace(":", ": ", 1)
                raise ConfigError(f"config key {'.'.join([*path, k])!r} {where} looks like "
                                  f"'{fixed}' written without the space YAML needs after the colon; "
                                  f"write {{{fixed}}}")
            _refuse_colon_keys(v, [*path, str(k)], where)
    elif isinstance(node, list):
        for v in node:
            _refuse_colon_keys(v, path, where)


def resolve(cfg: RunConfig) -> None:
    """Fill the values that default to something else (before `validate`)."""
    cfg.baseline = cfg.baseline.replace("-", "_")  # zero-shot and zero_shot both accepted
    cfg.fed.resolve()


def validate(cfg: RunConfig) -> None:
    """Every field's allowed values (the Literal of its annotation), every section's own rules,
    then the rules across sections; the first broken one raises a ConfigError naming the key, the
    value and the fix."""
    check_choices(cfg)
    for section in (cfg.model, cfg.data, cfg.fed, cfg.train, cfg.eval, cfg.output, cfg.checkpoint,
                    cfg.distributed):
        section.check()
    for rule in CROSS_RULES:
        rule(cfg)


# --- rules across sections ---------------------------------------------------------------------
def _whole_adapter(cfg: RunConfig) -> None:
    f = cfg.fed
    require(not f.needs_whole_adapter or cfg.train.zero_stage <= 2,
            f"train.zero_stage ({cfg.train.zero_stage}) must be <= 2 with fed.regularizer="
            f"{f.regularizer} / fed.algorithm={f.algorithm}: their loss term needs the whole adapter "
            "on each rank, which ZeRO-3 partitions")


def _warmup(cfg: RunConfig) -> None:
    require(cfg.train.warmup_rounds <= cfg.fed.rounds,
            f"train.warmup_rounds ({cfg.train.warmup_rounds}) exceeds fed.rounds ({cfg.fed.rounds}); "
            "lower train.warmup_rounds")


def _clients_for_data(cfg: RunConfig) -> None:
    d, n = cfg.data, cfg.fed.num_clients
    require(d.scenario != "cross" or d.k <= n,
            f"data.k ({d.k}) must be between 0 and fed.num_clients ({n})")
    require(d.partition != "source" or 1 <= d.k < n,
            f"data.partition=source gives data.k ({d.k}) clients the image source and the rest the "
            f"text source: data.k must be between 1 and fed.num_clients - 1 ({n - 1})")


def _eval_mode_for_data(cfg: RunConfig) -> None:
    require(not (DATASETS[cfg.data.name].open_ended and cfg.eval.mode == "scoring"),
            f"data.name={cfg.data.name} has open-ended answers: set eval.mode=generation")


def _local_generation_zero3(cfg: RunConfig) -> None:
    require(not (cfg.baseline == "local" and cfg.eval.mode == "generation" and cfg.train.zero_stage == 3
                 and cfg.fed.ranks_per_client > 1),
            "baseline=local with eval.mode=generation at train.zero_stage=3 and fed.ranks_per_client > 1 "
            "would deadlock (groups decode different clients in lock-step); use train.zero_stage<=2 "
            "or fed.ranks_per_client=1")


def _scaffold_constant_rate(cfg: RunConfig) -> None:
    require(not (cfg.fed.algorithm == "scaffold" and cfg.train.local_schedule != "constant"),
            f"fed.algorithm=scaffold needs train.local_schedule=constant (got {cfg.train.local_schedule}): "
            "its control update divides the client's change by steps x lr, which a schedule inside the "
            "round makes wrong")


CROSS_RULES = (_whole_adapter, _warmup, _clients_for_data, _eval_mode_for_data, _local_generation_zero3,
               _scaffold_constant_rate)


def to_yaml(cfg: RunConfig) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def to_container(cfg: RunConfig) -> dict:
    """The config as plain JSON-able dicts (what a checkpoint records)."""
    return OmegaConf.to_container(OmegaConf.structured(cfg))
