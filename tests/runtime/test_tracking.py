"""output.report_to (hpc_fed/runtime/tracking.py) against the real libraries: one federated run
reports to TensorBoard, W&B (offline), MLflow and trackio, and each library's own reader gives
back metrics.jsonl's rows and the run's config; nothing lands outside the run directory; a
tracker that cannot open or log warns once and the run goes on, unslowed."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from cli_helpers import QUICK, ROOT, TINY, cli

from hpc_fed.config import load_config
from hpc_fed.errors import ConfigError
from hpc_fed.runtime.tracking import Trackers, flat_metrics
from hpc_fed.runtime.tracking_process import flat_config

ROW = {"round": 3, "lr": 0.002, "train_loss": 0.5,
       "eval": {"accuracy": 0.75, "samples": 16,
                "views": {"no_image": {"accuracy": 0.5, "samples": 16}}},
       "time": {"round": 1.5, "local_train": 1.2}}
LIBRARY_ENV = ("WANDB_", "MLFLOW_", "TRACKIO_")  # the trackers' own settings, cleared for defaults
# names a tracker's files would carry outside the run directory
TRACKER_NAMES = ("tensorboard", "tfevents", "wandb", "mlflow", "mlruns", "mlartifacts", "trackio")


def test_rows_become_flat_scalars():
    assert flat_metrics(ROW) == {"train/loss": 0.5, "train/lr": 0.002, "eval/accuracy": 0.75,
                                 "eval/no_image/accuracy": 0.5, "time/round": 1.5,
                                 "time/local_train": 1.2}
    assert flat_metrics({"round": 0, "lr": 0.1, "train_loss": 1.0, "eval": None, "time": {}}) == \
        {"train/loss": 1.0, "train/lr": 0.1}


def test_unknown_or_missing_trackers_are_refused_at_load(monkeypatch):
    with pytest.raises(ConfigError, match=r"output.report_to: 'tensorbord' is unknown"):
        load_config(QUICK, ["output.report_to=[tensorbord]"])
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "wandb" else real(n, *a))
    with pytest.raises(ConfigError, match=r'pip install "hpc_fed\[wandb\]"'):
        load_config(QUICK, ["output.report_to=[wandb]"])


def _tracker_paths(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if any(n in p.name.lower() for n in TRACKER_NAMES)]


@pytest.fixture(scope="module")
def tracked(tiny_model_dir, tmp_path_factory):
    """One 2-round run reporting to all four trackers, with their defaults (no WANDB_*, MLFLOW_*,
    TRACKIO_* set) and an empty home folder: (run dir, home, what the repository root gained)."""
    base = tmp_path_factory.mktemp("tracked")
    out, home = base / "run", base / "home"
    home.mkdir()
    before = set(_tracker_paths(ROOT))
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith(LIBRARY_ENV)]:
            mp.delenv(key)
        proc = cli("launch", "--nproc", "2", "--config", QUICK, f"model.path={tiny_model_dir}", *TINY,
                   "fed.rounds=2", "eval.every=1", "output.report_to=[tensorboard,wandb,mlflow,trackio]",
                   f"output.dir={out}", env={"HOME": str(home)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "output.report_to" not in proc.stderr  # every tracker opened and logged
    return out, home, set(_tracker_paths(ROOT)) - before


def expected(out: Path) -> tuple[dict[str, list[tuple[int, float]]], dict]:
    """metrics.jsonl as {tracker key: [(round, value), ...]}, and config.yaml."""
    history: dict[str, list[tuple[int, float]]] = {}
    for line in (out / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        for key, value in flat_metrics(row).items():
            history.setdefault(key, []).append((row["round"], value))
    assert {"train/loss", "eval/accuracy", "time/round"} <= set(history)
    assert [s for s, _ in history["eval/accuracy"]] == [0, 1]
    return history, yaml.safe_load((out / "config.yaml").read_text())


def assert_same_history(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for key, points in want.items():
        assert [s for s, _ in got[key]] == [s for s, _ in points], key
        assert [v for _, v in got[key]] == pytest.approx([v for _, v in points], rel=1e-6), key


@pytest.mark.slow
def test_nothing_is_written_outside_the_run_directory(tracked):
    out, home, in_repository = tracked
    assert in_repository == set()
    assert _tracker_paths(home) == []
    assert {p.name for p in out.iterdir()} >= {"tensorboard", "wandb", "mlflow", "trackio"}


@pytest.mark.slow
def test_tensorboard_reads_back_the_rounds_and_config(tracked):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tracked[0]
    want, config = expected(out)
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    got = {k: [(e.step, e.value) for e in events.Scalars(k)] for k in events.Tags()["scalars"]}
    assert_same_history(got, want)
    text = events.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert yaml.safe_load(text.strip().strip("`")) == config


@pytest.mark.slow
def test_wandb_offline_run_reads_back_the_rounds_and_config(tracked):
    out = tracked[0]
    want, config = expected(out)
    (run,) = (out / "wandb").glob("offline-run-*")
    # wandb's own reader of the run's transaction log (.wandb), one JSON record a line
    records = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(run)],
                             capture_output=True, text=True, check=True, timeout=120).stdout
    got: dict[str, list] = {}
    recorded: dict = {}
    for record in map(json.loads, records.splitlines()):
        if record["type"] == "history":
            item = record["history"]["item"]
            for key, value in item.items():
                if not key.startswith("_"):
                    got.setdefault(key, []).append((record["history"]["step"]["num"], value))
        elif record["type"] == "run":
            recorded.update(record["run"]["config"]["update"])
    assert_same_history(got, want)
    recorded.pop("_wandb", None)
    assert recorded == config


@pytest.mark.slow
def test_mlflow_reads_back_the_rounds_and_config(tracked):
    from mlflow import MlflowClient

    out = tracked[0]
    want, config = expected(out)
    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("hpc_fed")
    assert experiment.artifact_location.startswith((out / "mlflow").resolve().as_uri())
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == out.name and run.info.status == "FINISHED"
    got = {k: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, k)]
           for k in run.data.metrics}
    assert_same_history(got, want)
    assert run.data.params == flat_config(config)


@pytest.mark.slow
def test_trackio_reads_back_the_rounds_and_config(tracked):
    out = tracked[0]
    want, config = expected(out)
    trackio = [str(Path(sys.executable).parent / "trackio"), "get"]
    where = ["--project", "hpc_fed", "--run", out.name, "--json"]
    env = {**os.environ, "TRACKIO_DIR": str(out / "trackio")}

    def read(*what):  # trackio's own reader of its local store
        return json.loads(subprocess.run([*trackio, *what, *where], env=env, capture_output=True,
                                          text=True, check=True, timeout=120).stdout)

    run = read("run")
    # every round: steps 0..2000 (trackio's CLI takes "--around 0" for no --around at all)
    snapshot = read("snapshot", "--around", "1000", "--window", "1000")
    got = {k: [(p["step"], p["value"]) for p in points] for k, points in snapshot["metrics"].items()}
    assert_same_history(got, want)
    assert {k: v for k, v in run["config"].items() if not k.startswith("_")} == config


@pytest.mark.slow
def test_a_tracker_that_cannot_open_warns_once_and_the_run_finishes(tiny_model_dir, tmp_path):
    """MLflow >= 3.13 refuses a plain folder store: one warning, and the run completes."""
    out = tmp_path / "run"
    proc = cli("launch", "--nproc", "1", "--config", QUICK, f"model.path={tiny_model_dir}", *TINY,
               "output.report_to=[mlflow]", f"output.dir={out}",
               env={"MLFLOW_TRACKING_URI": (tmp_path / "mlruns").as_uri()})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "results.json").is_file()
    warnings = [line for line in proc.stderr.splitlines() if "output.report_to" in line]
    assert len(warnings) == 1 and "mlflow could not start" in warnings[0], warnings
    assert not (out / "mlflow").exists()  # the user's store, not the run directory's


@pytest.mark.slow
def test_a_tracker_that_fails_to_log_warns_once_and_never_holds_the_rounds(tmp_path, monkeypatch, capfd):
    """MLflow opening a new store takes seconds; the run's calls return at once. MLflow refuses
    a metric name with brackets: the rows holding one fail to log, with one warning for all."""
    for key in [k for k in os.environ if k.startswith("MLFLOW_")]:
        monkeypatch.delenv(key)
    run_dir = tmp_path / "run-1"
    bad = {**ROW, "eval": {"accuracy": 0.75, "views": {"no image (%)": {"accuracy": 0.5}}}}
    started = time.perf_counter()
    trackers = Trackers(["mlflow"], run_dir, {"fed": {"rounds": 4}, "model": {"path": "tiny"}}, "")
    for r in range(4):
        trackers.log({**(bad if r else ROW), "round": r})
    assert time.perf_counter() - started < 1.0  # importing MLflow alone takes longer
    trackers.close()
    warnings = [line for line in capfd.readouterr().err.splitlines() if "output.report_to" in line]
    assert len(warnings) == 1 and "mlflow failed to log round 1" in warnings[0], warnings

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{run_dir / 'mlflow' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("hpc_fed").experiment_id])
    assert run.data.params == {"fed.rounds": "4", "model.path": "tiny"}
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == [0]
    assert run.info.status == "FINISHED"


@pytest.mark.slow
def test_the_trackers_process_ending_early_warns_once(tmp_path, caplog):
    """A library that takes its process down (killed here) costs the run one warning."""
    caplog.set_level(logging.WARNING, logger="hpc_fed")
    trackers = Trackers(["tensorboard"], tmp_path / "run", {"a": 1}, "a: 1\n")
    trackers.process.kill()
    trackers.process.wait()
    for r in range(3):
        trackers.log({**ROW, "round": r})
    trackers.close()
    warnings = [r.getMessage() for r in caplog.records if "output.report_to" in r.getMessage()]
    assert len(warnings) == 1 and "the trackers' process ended" in warnings[0], warnings
