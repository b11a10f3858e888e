"""Experiment tracking: `output.report_to` sends the config and each round's metrics to
TensorBoard, Weights & Biases, MLflow or trackio, through their own libraries (optional extras:
`pip install "hpc_fed[tensorboard]"` etc.), from rank 0 only. metrics.jsonl stays the contract;
trackers get a flat copy of each row, under the same names in every tracker:

  train/loss, train/lr                       every round
  eval/<metric>, eval/<view>/<metric>        evaluated rounds (accuracy, auc, macro_f1, ...)
  time/<phase>                               seconds of the round's phases

Where each one writes, and how to read it back, unless its own environment points it elsewhere:
  tensorboard  <run dir>/tensorboard: event files; `tensorboard --logdir <run dir>`
  wandb        <run dir>/wandb: an offline run (offline-run-*/run-*.wandb) and wandb-core's debug
               logs (cache/). `wandb sync <run dir>/wandb/offline-run-*` uploads it,
               `wandb leet <run dir>/wandb` browses it. WANDB_MODE=online logs to the server,
               WANDB_DIR / WANDB_CACHE_DIR / WANDB_PROJECT move or name it.
  mlflow       <run dir>/mlflow: an SQLite store mlflow.db, experiment "hpc_fed", artifacts/;
               `mlflow ui --backend-store-uri sqlite:///<run dir>/mlflow/mlflow.db`.
               MLFLOW_TRACKING_URI (a server or database) and MLFLOW_EXPERIMENT_NAME override.
               MLflow itself keeps an installation id for its usage telemetry in
               ~/.config/mlflow (MLFLOW_DISABLE_TELEMETRY=true or DO_NOT_TRACK=true stop it).
  trackio      <run dir>/trackio: the project's SQLite store (project "hpc_fed");
               `TRACKIO_DIR=<run dir>/trackio trackio show`. TRACKIO_DIR, TRACKIO_PROJECT,
               TRACKIO_SPACE_ID / TRACKIO_SERVER_URL override.
A fresh run (not a resumed one) clears these folders of its run directory, as it clears
metrics.jsonl; a resumed run goes on in a new tracker run next to the first one.

A tracker never stops the run or holds a round. The libraries run in a child process of rank 0
(hpc_fed/runtime/tracking_process.py), each on its own thread: their imports, MLflow's migration
of a new store (~10 s on a busy 2-core machine) and wandb's service start happen outside rank
0's interpreter (on a core of their own where the node has one), and a round only writes one
line to a pipe. A tracker
that fails to open is dropped with one warning naming output.report_to and the reason; one that
fails to log warns at its first failure and keeps trying; once the run ends they get
CLOSE_TIMEOUT_S to deliver what is queued and close.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from hpc_fed.errors import ConfigError
from hpc_fed.runtime.tracking_process import CLOSE_TIMEOUT_S

log = logging.getLogger(__name__)

# output.report_to value -> (module that must import, the extra that installs it)
TRACKERS = {"tensorboard": ("tensorboard", "tensorboard"), "wandb": ("wandb", "wandb"),
            "mlflow": ("mlflow", "mlflow"), "trackio": ("trackio", "trackio")}
# the folders of the run directory the trackers write by default (a fresh run clears them)
RUN_DIR_FOLDERS = tuple(TRACKERS)


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


class Trackers:
    """The configured trackers of one run (rank 0): log(row) per round, close() at the end."""

    def __init__(self, names, run_dir: Path, config: dict, config_yaml: str):
        self.names = list(names)
        self.run_dir = Path(run_dir)
        package_root = str(Path(__file__).resolve().parents[2])  # the hpc_fed that runs this
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
        self.process: subprocess.Popen | None = None
        try:
            self.process = subprocess.Popen([sys.executable, "-m", "hpc_fed.runtime.tracking_process"],
                                            stdin=subprocess.PIPE, env=env, text=True)
        except OSError as exc:
            log.warning("output.report_to: the trackers' process could not start (%s); the run goes "
                        "on without them, metrics.jsonl has every round", exc)
        self._send({"names": self.names, "run_dir": str(self.run_dir), "config": config,
                    "config_yaml": config_yaml})

    def _send(self, message: dict) -> None:
        if self.process is None:
            return
        try:
            self.process.stdin.write(json.dumps(message, default=str) + "\n")
            self.process.stdin.flush()
        except (OSError, ValueError):  # the process is gone (a library crashed it, or it was killed)
            log.warning("output.report_to: the trackers' process ended (exit code %s); the run goes "
                        "on without them, metrics.jsonl has every round", self.process.poll())
            self.process = None

    def log(self, row: dict) -> None:
        """Hand the row to the trackers (returns at once)."""
        self._send({"round": int(row.get("round", 0)), "scalars": flat_metrics(row)})

    def close(self) -> None:
        """The run is over: the trackers deliver what is queued and close (CLOSE_TIMEOUT_S)."""
        if self.process is None:
            return
        process, self.process = self.process, None
        try:
            process.stdin.close()
        except OSError:
            pass
        try:
            process.wait(CLOSE_TIMEOUT_S + 15)  # the process keeps to CLOSE_TIMEOUT_S itself
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            log.warning("output.report_to: the trackers did not close within %.0f s; stopped them, "
                        "metrics.jsonl has every round", CLOSE_TIMEOUT_S)
