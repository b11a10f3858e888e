"""The run directory contract: written by rank 0 only, atomic JSON, nothing touched before a run
has started, a finished run never overwritten silently."""

from __future__ import annotations

import json

import pytest

from hpc_fed.config import load_config
from hpc_fed.distributed.collectives import LocalComm
from hpc_fed.errors import ConfigError
from hpc_fed.runtime.rundir import RunDir


class NotMain(LocalComm):
    """Rank 1 of a world whose rank 0 found nothing to refuse or resume."""

    rank = 1

    def broadcast_object(self, obj, src=0):
        return (self.path, None, None) if obj is None else obj

    def __init__(self, path):
        super().__init__()
        self.path = path


def _open(tmp_path, *overrides):
    cfg = load_config(None, [f"output.dir={tmp_path / 'run'}", "fed.rounds=3", *overrides])
    return cfg, RunDir.open(cfg, LocalComm())


def test_rank_zero_writes_the_contract_files_once_started(tmp_path):
    cfg, run = _open(tmp_path)
    assert run.is_main and run.resume_from is None and not run.path.exists()  # open writes nothing
    run.start(cfg, resumed_round=None)
    assert "rounds: 3" in (run.path / "config.yaml").read_text()
    run.append_metrics({"round": 0})
    run.append_metrics({"round": 1})
    run.write_json("results.json", {"final": {"accuracy": 0.5}})
    rows = [json.loads(x) for x in (run.path / "metrics.jsonl").read_text().splitlines()]
    assert rows == [{"round": 0}, {"round": 1}]
    assert json.loads((run.path / "results.json").read_text())["final"]["accuracy"] == 0.5
    assert not list(run.path.glob(".*.tmp"))  # written through a temporary file, then renamed


def test_a_finished_run_is_refused_and_left_untouched(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.json").write_text('{"final": {}}')
    (tmp_path / "run" / "metrics.jsonl").write_text('{"round": 0}\n')
    with pytest.raises(ConfigError, match=r"holds a finished run \(results.json\).*output.overwrite=true"):
        _open(tmp_path)
    assert (tmp_path / "run" / "metrics.jsonl").read_text() == '{"round": 0}\n'
    cfg, run = _open(tmp_path, "output.overwrite=true")  # replaced only once started
    assert (tmp_path / "run" / "results.json").exists()
    (tmp_path / "run" / "checkpoints" / "round-000001").mkdir(parents=True)
    for tracker in ("tensorboard", "wandb", "mlflow", "trackio"):  # output.report_to's folders
        (tmp_path / "run" / tracker).mkdir()
        (tmp_path / "run" / tracker / "earlier-run").write_text("")
    run.start(cfg, resumed_round=None)
    assert not (tmp_path / "run" / "results.json").exists()
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["config.yaml", "metrics.jsonl"]
    assert (tmp_path / "run" / "metrics.jsonl").read_text() == ""


def test_an_unfinished_run_resumes_keeping_its_earlier_rounds(tmp_path):
    ck = tmp_path / "run" / "checkpoints" / "round-000002"
    ck.mkdir(parents=True)
    (ck / "state.json").write_text("{}")
    (tmp_path / "run" / "checkpoints" / ".tmp-round-000003-x").mkdir()  # half written: ignored
    rows = [{"round": 0}, {"round": 1}, {"round": 2}]
    (tmp_path / "run" / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"rou')
    (tmp_path / "run" / "stopped.json").write_text("{}")
    (tmp_path / "run" / "mlflow").mkdir()
    (tmp_path / "run" / "mlflow" / "mlflow.db").write_text("")
    cfg, run = _open(tmp_path)
    assert run.resume_from == ck
    run.start(cfg, resumed_round=2)
    kept = [json.loads(x) for x in (run.path / "metrics.jsonl").read_text().splitlines()]
    assert kept == rows[:2] and not (run.path / "stopped.json").exists()
    assert (run.path / "mlflow" / "mlflow.db").exists()  # the trackers' earlier rounds stay
    with pytest.raises(ConfigError, match="checkpoint.resume=true"):
        _open(tmp_path, "checkpoint.resume=false")


def test_other_ranks_write_nothing(tmp_path):
    cfg = load_config(None, [f"output.dir={tmp_path / 'run'}"])
    run = RunDir.open(cfg, NotMain(str(tmp_path / "run")))
    run.start(cfg, None)
    run.write_json("results.json", {})
    run.append_metrics({"round": 0})
    assert not run.is_main and not (tmp_path / "run").exists()


def test_default_directory_is_timestamped():
    run = RunDir.open(load_config(None, []), LocalComm())
    assert run.path.parent.name == "runs" and run.path.name.startswith("run-") and not run.path.exists()
