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

A tracker never stops or slows the run: each one opens, logs and closes on its own thread
(MLflow's first open of a new SQLite store migrates it, ~3-10 s; wandb starts its service,
~1.5-4 s), so a round only queues its row. A tracker that fails to open is dropped with one
warning naming output.report_to and the reason; one that fails to log warns at its first
failure and keeps trying; at the end of the run each gets CLOSE_TIMEOUT_S to finish.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import queue
import threading
import time
from pathlib import Path

from hpc_fed.errors import ConfigError

log = logging.getLogger(__name__)

# output.report_to value -> (module that must import, the extra that installs it)
TRACKERS = {"tensorboard": ("tensorboard", "tensorboard"), "wandb": ("wandb", "wandb"),
            "mlflow": ("mlflow", "mlflow"), "trackio": ("trackio", "trackio")}
# the folders of the run directory the trackers write by default (a fresh run clears them)
RUN_DIR_FOLDERS = tuple(TRACKERS)
# the end of a run waits this long for the trackers to deliver what is queued and close: long
# enough for MLflow's first open on a busy machine, short enough that a tracker stuck on an
# unreachable server (MLflow retries a request for ~2 min) does not hold the job
CLOSE_TIMEOUT_S = 60.0
_MLFLOW_PARAM_MAX = 6000  # MLflow refuses longer parameter values
_CLOSE = object()


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


def flat_config(config: dict, prefix: str = "") -> dict[str, str]:
    """The config as MLflow parameters: dotted keys, string values."""
    out = {}
    for k, v in config.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flat_config(v, key + "."))
        else:
            out[key] = str(v)
    return out


# --- one class per library: opened by __init__, then log(scalars, step) per round, close() -----------
class TensorBoard:
    def __init__(self, run_dir: Path, config: dict, config_yaml: str):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
        self.writer.add_text("config", "```\n" + config_yaml + "\n```", 0)

    def log(self, scalars: dict, step: int) -> None:
        for key, value in scalars.items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandB:
    # wandb-core writes its debug logs under the cache folder (~/.cache/wandb by default)
    env_defaults = {"WANDB_CACHE_DIR": "wandb/cache"}

    def __init__(self, run_dir: Path, config: dict, config_yaml: str):
        import wandb

        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "hpc_fed"), name=run_dir.name,
                              dir=None if os.environ.get("WANDB_DIR") else str(run_dir), config=config,
                              mode=os.environ.get("WANDB_MODE", "offline"), reinit="create_new")

    def log(self, scalars: dict, step: int) -> None:
        self.run.log(scalars, step=step)

    def close(self) -> None:
        self.run.finish()


class MLflow:
    def __init__(self, run_dir: Path, config: dict, config_yaml: str):
        from mlflow import MlflowClient
        from mlflow.entities import Param

        uri, artifacts = os.environ.get("MLFLOW_TRACKING_URI"), None
        if not uri:  # MLflow >= 3.13 refuses a plain folder (file:) store; SQLite is its local store
            store = (run_dir / "mlflow").resolve()
            store.mkdir(parents=True, exist_ok=True)
            uri, artifacts = f"sqlite:///{store / 'mlflow.db'}", (store / "artifacts").as_uri()
        self.client = MlflowClient(tracking_uri=uri)
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME", "hpc_fed")
        experiment = self.client.get_experiment_by_name(name)
        experiment_id = (experiment.experiment_id if experiment else
                         self.client.create_experiment(name, artifact_location=artifacts))
        self.run_id = self.client.create_run(experiment_id, run_name=run_dir.name).info.run_id
        params = [Param(k, v[:_MLFLOW_PARAM_MAX]) for k, v in flat_config(config).items()]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 parameters a call
            self.client.log_batch(self.run_id, params=params[i:i + 100])

    def log(self, scalars: dict, step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in scalars.items()])

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


class Trackio:
    # trackio reads its store's location once, when it is first imported
    env_defaults = {"TRACKIO_DIR": "trackio"}

    def __init__(self, run_dir: Path, config: dict, config_yaml: str):
        import trackio
        from trackio import utils

        wanted = Path(os.environ["TRACKIO_DIR"])
        if utils.TRACKIO_DIR != wanted:
            raise RuntimeError(f"trackio was imported earlier in this process with its store at "
                               f"{utils.TRACKIO_DIR}, not {wanted}")
        self.run = trackio.init(project=os.environ.get("TRACKIO_PROJECT", "hpc_fed"), name=run_dir.name,
                                config=config)

    def log(self, scalars: dict, step: int) -> None:
        self.run.log(scalars, step=step)

    def close(self) -> None:
        self.run.finish()


LIBRARIES = {"tensorboard": TensorBoard, "wandb": WandB, "mlflow": MLflow, "trackio": Trackio}


def _reason(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


class _Tracker(threading.Thread):
    """One library on its own thread: open, then log each queued row, then close."""

    def __init__(self, name: str, opener):
        super().__init__(name=f"hpc_fed-{name}", daemon=True)  # never holds the process at exit
        self.tracker = name
        self.opener = opener
        self.rows: queue.SimpleQueue = queue.SimpleQueue()
        self.doing = "opening"
        self.dropped = False

    def run(self) -> None:
        try:
            handle = self.opener()
        except Exception as exc:
            self.dropped = True
            log.warning("output.report_to: %s could not start (%s); the run goes on without it, "
                        "metrics.jsonl has every round", self.tracker, _reason(exc))
            return
        failed = 0
        while (item := self.rows.get()) is not _CLOSE:
            scalars, step = item
            self.doing = f"logging round {step}"
            try:
                handle.log(scalars, step)
            except Exception as exc:
                failed += 1
                if failed == 1:
                    log.warning("output.report_to: %s failed to log round %d (%s); it keeps trying "
                                "without further warnings, metrics.jsonl has every round",
                                self.tracker, step, _reason(exc))
        self.doing = "closing"
        try:
            handle.close()
        except Exception as exc:
            log.warning("output.report_to: closing %s failed (%s)", self.tracker, _reason(exc))


class Trackers:
    """The configured trackers of one run (rank 0); log(row) per round, close() at the end."""

    def __init__(self, names, run_dir: Path, config: dict, config_yaml: str):
        self.names = list(names)
        self.run_dir = Path(run_dir)
        # defaults that keep each library inside the run directory, set here (not on the trackers'
        # threads) and taken back at close; a variable the user set is left alone
        self._env_set: dict[str, str] = {}
        for name in self.names:
            for key, sub in getattr(LIBRARIES[name], "env_defaults", {}).items():
                if not os.environ.get(key):
                    os.environ[key] = self._env_set[key] = str((self.run_dir / sub).resolve())
        self._threads = []
        for name in self.names:
            library = LIBRARIES[name]
            thread = _Tracker(name, lambda lib=library: lib(self.run_dir, config, config_yaml))
            thread.start()
            self._threads.append(thread)

    def log(self, row: dict) -> None:
        """Queue the row for every tracker (returns at once)."""
        scalars, step = flat_metrics(row), int(row.get("round", 0))
        for thread in self._threads:
            if not thread.dropped:
                thread.rows.put((scalars, step))

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Let every tracker deliver what is queued and close, for at most `timeout` seconds."""
        for thread in self._threads:
            thread.rows.put(_CLOSE)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("output.report_to: %s still busy %s after %.0f s at the end of the run; "
                            "left behind, metrics.jsonl has every round", thread.tracker, thread.doing,
                            timeout)
        self._threads = []
        for key, value in self._env_set.items():
            if os.environ.get(key) == value:
                del os.environ[key]
        self._env_set = {}
