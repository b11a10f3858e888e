"""output.report_to (hpc_fed/runtime/tracking.py): a real run writes TensorBoard event files with
the round metrics; unknown or missing trackers stop at config load in one line."""

from __future__ import annotations

import sys
import types

import pytest
from cli_helpers import QUICK, TINY, cli

from hpc_fed.config import load_config
from hpc_fed.errors import ConfigError
from hpc_fed.runtime.tracking import Trackers, flat_metrics

ROW = {"round": 3, "lr": 0.002, "train_loss": 0.5,
       "eval": {"accuracy": 0.75, "samples": 16,
                "views": {"no_image": {"accuracy": 0.5, "samples": 16}}},
       "time": {"round": 1.5, "local_train": 1.2}}


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


def test_a_run_writes_tensorboard_events_with_the_round_metrics(tiny_model_dir, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    proc = cli("launch", "--nproc", "2", "--config", QUICK, f"model.path={tiny_model_dir}", *TINY,
               "fed.rounds=2", "eval.every=1", "output.report_to=[tensorboard]", f"output.dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/lr", "eval/accuracy", "time/round"} <= tags
    assert [e.step for e in events.Scalars("train/loss")] == [0, 1]
    assert [e.step for e in events.Scalars("eval/accuracy")] == [0, 1]
    import json

    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [e.value for e in events.Scalars("train/loss")]
    assert losses == pytest.approx([r["train_loss"] for r in rows])
    assert "config/text_summary" in events.Tags()["tensors"]  # the run's config, once


def test_wandb_mlflow_trackio_calls(tmp_path, monkeypatch):
    """The three other trackers, against stand-ins that record the calls (their libraries are not
    installed here): the run's config goes in once, each row as scalars at its round."""
    calls = []

    class Run:
        def log(self, scalars, step):
            calls.append(("wandb.log", step, scalars["train/loss"]))

        def finish(self):
            calls.append(("wandb.finish",))

    def wandb_init(**kw):
        calls.append(("wandb.init", kw["mode"], kw["config"]["a"]))
        return Run()

    wandb = types.SimpleNamespace(init=wandb_init)
    mlflow = types.SimpleNamespace(
        set_tracking_uri=lambda uri: calls.append(("mlflow.uri", uri.startswith("file:"))),
        start_run=lambda run_name: calls.append(("mlflow.start", run_name)),
        log_params=lambda params: calls.append(("mlflow.params", params)),
        log_metrics=lambda metrics, step: calls.append(("mlflow.log", step, metrics["train.loss"])),
        end_run=lambda: calls.append(("mlflow.end",)))
    trackio = types.SimpleNamespace(
        init=lambda project, name, config: calls.append(("trackio.init", project, config["a"])),
        log=lambda scalars, step: calls.append(("trackio.log", step, scalars["train/loss"])),
        finish=lambda: calls.append(("trackio.finish",)))
    for name, module in (("wandb", wandb), ("mlflow", mlflow), ("trackio", trackio)):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    trackers = Trackers(["wandb", "mlflow", "trackio"], tmp_path / "run-1", {"a": 1, "b": {"c": 2}},
                        "a: 1\n")
    trackers.log(ROW)
    trackers.close()
    assert calls == [("wandb.init", "offline", 1), ("mlflow.uri", True), ("mlflow.start", "run-1"),
                     ("mlflow.params", {"a": "1", "b.c": "2"}), ("trackio.init", "hpc_fed", 1),
                     ("wandb.log", 3, 0.5), ("mlflow.log", 3, 0.5), ("trackio.log", 3, 0.5),
                     ("wandb.finish",), ("mlflow.end",), ("trackio.finish",)]
