"""The trackers' process (started by hpc_fed.runtime.tracking.Trackers on rank 0): each library
of output.report_to opens, logs and closes on its own thread, so a slow one (MLflow migrating a
new store, a server retrying) holds neither the others nor the run.

Reads JSON lines on stdin: first {"names", "run_dir", "config", "config_yaml"}, then one
{"round", "scalars"} per round; the end of stdin (the run closed it, or rank 0 is gone) closes
the trackers, within CLOSE_TIMEOUT_S. Warnings, one line each, go to stderr.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import sys
import threading
import time
from pathlib import Path

log = logging.getLogger("hpc_fed.runtime.tracking")

# how long the trackers get to deliver what is queued and close once the run ends: enough for
# MLflow's first open on a busy machine (~15 s measured), short of holding the job for a tracker
# stuck on an unreachable server (MLflow retries one request for ~2 min)
CLOSE_TIMEOUT_S = 60.0
_MLFLOW_PARAM_MAX = 6000  # MLflow refuses longer parameter values
_CLOSE = object()


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
# env_defaults: where a library writes when its own variable is unset (relative to the run dir)
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
    env_defaults = {"WANDB_CACHE_DIR": "wandb/cache"}  # wandb-core's debug logs (~/.cache/wandb)

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
    env_defaults = {"TRACKIO_DIR": "trackio"}  # its store (~/.cache/huggingface/trackio)

    def __init__(self, run_dir: Path, config: dict, config_yaml: str):
        import trackio

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
        super().__init__(name=name, daemon=True)
        self.opener = opener
        self.rows: queue.SimpleQueue = queue.SimpleQueue()
        self.doing = "opening"

    def run(self) -> None:
        try:
            handle = self.opener()
        except Exception as exc:
            log.warning("output.report_to: %s could not start (%s); the run goes on without it, "
                        "metrics.jsonl has every round", self.name, _reason(exc))
            return
        failed = 0
        while (item := self.rows.get()) is not _CLOSE:
            step, scalars = item
            self.doing = f"logging round {step}"
            try:
                handle.log(scalars, step)
            except Exception as exc:
                failed += 1
                if failed == 1:
                    log.warning("output.report_to: %s failed to log round %d (%s); it keeps trying "
                                "without further warnings, metrics.jsonl has every round",
                                self.name, step, _reason(exc))
        self.doing = "closing"
        try:
            handle.close()
        except Exception as exc:
            log.warning("output.report_to: closing %s failed (%s)", self.name, _reason(exc))


def main() -> None:
    # Ctrl-C and SLURM's SIGTERM reach the whole job; this process ends with the run's pipe
    # instead, so the trackers are closed after rank 0's last row
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(format="[rank 0] %(asctime)s %(message)s", datefmt="%H:%M:%S")
    start = json.loads(sys.stdin.readline() or "null")
    if start is None:
        return
    run_dir = Path(start["run_dir"])
    for name in start["names"]:
        for key, sub in getattr(LIBRARIES[name], "env_defaults", {}).items():
            if not os.environ.get(key):
                os.environ[key] = str((run_dir / sub).resolve())
    threads = []
    for name in start["names"]:
        library = LIBRARIES[name]
        threads.append(_Tracker(name, lambda lib=library: lib(run_dir, start["config"],
                                                               start["config_yaml"])))
        threads[-1].start()
    for line in sys.stdin:  # read as it comes, so rank 0 never waits on a full pipe
        row = json.loads(line)
        for thread in threads:
            if thread.is_alive():
                thread.rows.put((row["round"], row["scalars"]))
    for thread in threads:
        thread.rows.put(_CLOSE)
    deadline = time.monotonic() + CLOSE_TIMEOUT_S
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            log.warning("output.report_to: %s still busy %s %.0f s after the run ended; stopped, "
                        "metrics.jsonl has every round", thread.name, thread.doing, CLOSE_TIMEOUT_S)
    if any(thread.is_alive() for thread in threads):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # without waiting for the busy thread (or its library's exit hooks)


if __name__ == "__main__":
    main()
