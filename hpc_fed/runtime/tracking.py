"""Experiment tracking: `output.report_to` sends the config and each round's metrics to
TensorBoard, Weights & Biases, MLflow or trackio, through their own libraries (optional extras:
`pip install "hpc_fed[tensorboard]"` etc.), from rank 0 only. metrics.jsonl stays the contract;
trackers get a flat copy of each row:

  train/loss, train/lr                       every round
  eval/<metric>, eval/<view>/<metric>        evaluated rounds (accuracy, auc, macro_f1, ...)
  time/<phase>                               seconds of the round's phases

Where each one writes, unless its own environment says otherwise:
  tensorboard  <run dir>/tensorboard (event files; `tensorboard --logdir runs`)
  wandb        offline run under <run dir>/wandb (WANDB_MODE=online syncs; WANDB_PROJECT)
  mlflow       file store <run dir>/mlruns (MLFLOW_TRACKING_URI overrides)
  trackio      its local store (TRACKIO_PROJECT names the project)
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

from hpc_fed.errors import ConfigError

log = logging.getLogger(__name__)

# output.report_to value -> (module that must import, the extra that installs it)
TRACKERS = {"tensorboard": ("tensorboard", "tensorboard"), "wandb": ("wandb", "wandb"),
            "mlflow": ("mlflow", "mlflow"), "trackio": ("trackio", "trackio")}


def check_trackers(names) -> None:
    """Unknown names and missing libraries, as one line naming output.report_to and the fix."""
    for name in names:
        if name not in TRACKERS:
            raise ConfigError(f"output.report_to: {name!r} is unknown; choose from {sorted(TRACKERS)}")
        module, extra = TRACKERS[name]
        if importlib.util.find_spec(module) is None:
            raise ConfigError(f"output.report_to: {name} needs the {module} package, which is not "
                              f"installed: pip install \"hpc_fed[{extra}]\" (or drop {name!r})")


def flat_metrics(row: dict) -> dict[str, float]:
    """A metrics.jsonl row as tracker scalars (see the module docstring)."""
    out: dict[str, float] = {}
    if row.get("train_loss") is not None:
        out["train/loss"] = float(row["train_loss"])
    if row.get("lr") is not None:
        out["train/lr"] = float(row["lr"])

    def numbers(prefix: str, metrics: dict) -> None:
        for key, value in metrics.items():
            if isinstance(value, bool):
                continue
            if isinstance(value, (int, float)) and key != "samples":
                out[f"{prefix}/{key}"] = float(value)
            elif key == "views" and isinstance(value, dict):
                for view, vm in value.items():
                    numbers(f"{prefix}/{view}", vm)

    if isinstance(row.get("eval"), dict):
        numbers("eval", row["eval"])
    for phase, seconds in (row.get("time") or {}).items():
        out[f"time/{phase}"] = float(seconds)
    return out


def _flat_config(config: dict, prefix: str = "") -> dict[str, str]:
    out = {}
    for k, v in config.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat_config(v, key + "."))
        else:
            out[key] = str(v)
    return out


class Trackers:
    """The configured trackers of one run (rank 0); log(row) per round, close() at the end."""

    def __init__(self, names, run_dir: Path, config: dict, config_yaml: str):
        self.names = list(names)
        self.run_dir = Path(run_dir)
        self._open = []
        for name in self.names:
            self._open.append((name, getattr(self, f"_open_{name}")(config, config_yaml)))

    # --- per library ---------------------------------------------------------------------------
    def _open_tensorboard(self, config, config_yaml):
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))
        writer.add_text("config", "```\n" + config_yaml + "\n```", 0)
        return writer

    def _open_wandb(self, config, config_yaml):
        import wandb

        mode = os.environ.get("WANDB_MODE", "offline")
        return wandb.init(project=os.environ.get("WANDB_PROJECT", "hpc_fed"), name=self.run_dir.name,
                          dir=str(self.run_dir), config=config, mode=mode, reinit=True)

    def _open_mlflow(self, config, config_yaml):
        import mlflow

        if not os.environ.get("MLFLOW_TRACKING_URI"):
            mlflow.set_tracking_uri((self.run_dir / "mlruns").resolve().as_uri())
        run = mlflow.start_run(run_name=self.run_dir.name)
        flat = _flat_config(config)
        for i in range(0, len(flat), 100):  # MLflow takes at most 100 params a call
            mlflow.log_params(dict(list(flat.items())[i:i + 100]))
        return run

    def _open_trackio(self, config, config_yaml):
        import trackio

        return trackio.init(project=os.environ.get("TRACKIO_PROJECT", "hpc_fed"),
                            name=self.run_dir.name, config=config)

    # --- the run's side ----------------------------------------------------------------------------
    def log(self, row: dict) -> None:
        scalars, step = flat_metrics(row), int(row.get("round", 0))
        for name, handle in self._open:
            try:
                if name == "tensorboard":
                    for key, value in scalars.items():
                        handle.add_scalar(key, value, step)
                    handle.flush()
                elif name == "wandb":
                    handle.log(scalars, step=step)
                elif name == "mlflow":
                    import mlflow

                    mlflow.log_metrics({k.replace("/", "."): v for k, v in scalars.items()}, step=step)
                elif name == "trackio":
                    import trackio

                    trackio.log(scalars, step=step)
            except Exception as exc:  # a tracker must not stop the run; metrics.jsonl has it all
                log.warning("output.report_to: %s failed to log round %d (%s); the run goes on, "
                            "metrics.jsonl has every round", name, step, exc)

    def close(self) -> None:
        for name, handle in self._open:
            try:
                if name == "tensorboard":
                    handle.close()
                elif name == "wandb":
                    handle.finish()
                elif name == "mlflow":
                    import mlflow

                    mlflow.end_run()
                elif name == "trackio":
                    import trackio

                    trackio.finish()
            except Exception as exc:
                log.warning("output.report_to: closing %s failed (%s)", name, exc)
        self._open = []
