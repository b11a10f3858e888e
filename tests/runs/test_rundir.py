"""The run directory contract: written by rank 0 only, atomic JSON, nothing touched before a run
has started, a finished run never overwritten silently, and nothing replaced or removed in a
folder hpc_fed did not write for the same output.kind."""

from __future__ import annotations

import json

import pytest

from hpc_fed.config import load_config
from hpc_fed.distributed.collectives import LocalComm
from hpc_fed.errors import ConfigError
from hpc_fed.runtime.owned import MARKER
from hpc_fed.runs.rundir import RunDir, preflight


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


def _finished(run, kind="run"):
    """A finished run directory as hpc_fed writes it (marker, config, metrics, results, adapter)."""
    run.mkdir(parents=True)
    (run / MARKER).write_text(json.dumps({"written_by": "hpc_fed", "kind": kind}))
    (run / "config.yaml").write_text("fed:\n  rounds: 3\n")
    (run / "results.json").write_text('{"final": {}}')
    (run / "metrics.jsonl").write_text('{"round": 0}\n')
    (run / "adapter").mkdir()
    (run / "adapter" / "adapter_model.safetensors").write_bytes(b"weights")


def test_a_finished_run_is_refused_and_left_untouched(tmp_path):
    _finished(tmp_path / "run")
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
    left = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert left == ["config.yaml", "hpc_fed.json", "metrics.jsonl"]
    assert (tmp_path / "run" / "metrics.jsonl").read_text() == ""


def test_an_unfinished_run_resumes_keeping_its_earlier_rounds(tmp_path):
    ck = tmp_path / "run" / "checkpoints" / "round-000002"
    ck.mkdir(parents=True)
    (tmp_path / "run" / MARKER).write_text('{"written_by": "hpc_fed", "kind": "run"}')
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


def _tree(root):
    """Every file under root with its bytes (what a refusal must leave as it was)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_overwrite_never_touches_a_folder_hpc_fed_did_not_write(tmp_path):
    user = tmp_path / "run"  # a user's folder whose names happen to be the run directory's
    (user / "adapter").mkdir(parents=True)
    (user / "adapter" / "my_weights.bin").write_bytes(b"mine")
    (user / "tensorboard").mkdir()
    (user / "tensorboard" / "events").write_bytes(b"my logs")
    (user / "results.json").write_text('{"mine": true}')
    (user / "notes.txt").write_text("my notes")
    before = _tree(user)
    for overrides in (["output.overwrite=true"], []):
        with pytest.raises(ConfigError, match=r"holds files hpc_fed did not write \(it has no hpc_fed.json"):
            _open(tmp_path, *overrides)
        cfg = load_config(None, [f"output.dir={user}", *overrides])
        assert "hpc_fed did not write" in preflight(cfg, world_size=1)  # hpc-fed launch / prepare
    assert _tree(user) == before and not (user / MARKER).exists()


def test_a_replaced_run_keeps_the_files_it_did_not_write(tmp_path):
    run = tmp_path / "run"
    _finished(run)
    (run / "my_analysis.ipynb").write_text("{}")
    (run / "plots").mkdir()
    (run / "plots" / "loss.png").write_bytes(b"png")
    cfg, rd = _open(tmp_path, "output.overwrite=true")
    rd.start(cfg, resumed_round=None)
    assert not (run / "results.json").exists() and not (run / "adapter").exists()
    assert (run / "my_analysis.ipynb").read_text() == "{}"
    assert (run / "plots" / "loss.png").read_bytes() == b"png"
    assert json.loads((run / MARKER).read_text())["kind"] == "run"


def test_a_run_directory_of_an_older_hpc_fed_counts_as_a_run(tmp_path):
    """No marker yet: config.yaml and metrics.jsonl make it a run directory (kind run)."""
    run = tmp_path / "run"
    _finished(run)
    (run / MARKER).unlink()
    with pytest.raises(ConfigError, match="holds a finished run"):
        _open(tmp_path)
    cfg, rd = _open(tmp_path, "output.overwrite=true")
    rd.start(cfg, resumed_round=None)
    assert not (run / "results.json").exists() and json.loads((run / MARKER).read_text())["kind"] == "run"
    with pytest.raises(ConfigError, match=r"holds a training run \(hpc_fed.json: kind run\), which an "
                                          r"evaluation \(hpc-fed eval\) never writes into"):
        _open(tmp_path, "output.kind=eval", "output.overwrite=true")


def test_a_directory_of_another_kind_is_never_replaced(tmp_path):
    run = tmp_path / "run"
    _finished(run, kind="eval")
    before = _tree(run)
    with pytest.raises(ConfigError, match=r"holds an evaluation \(hpc-fed eval\).*runs/run-<time>"):
        _open(tmp_path, "output.overwrite=true")
    assert _tree(run) == before
    cfg, rd = _open(tmp_path, "output.kind=eval", "output.overwrite=true")  # its own kind: replaced
    rd.start(cfg, resumed_round=None)
    assert not (run / "results.json").exists()


def test_an_empty_folder_is_used_and_marked(tmp_path):
    (tmp_path / "run").mkdir()
    cfg, rd = _open(tmp_path, "output.kind=bench")
    rd.start(cfg, resumed_round=None)
    assert json.loads((tmp_path / "run" / MARKER).read_text()) == {"written_by": "hpc_fed", "kind": "bench"}
    with pytest.raises(ConfigError, match=r"output.kind \('train'\) must be one of run, eval, bench"):
        load_config(None, ["output.kind=train"])
