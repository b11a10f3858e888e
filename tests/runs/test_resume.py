"""Stop, then run the same command again: the run continues from its checkpoint and ends with the
uninterrupted run's adapter and metrics, bit for bit (2 ranks, SCAFFOLD: per-client state too)."""

from __future__ import annotations

import json

from cli_helpers import QUICK, TINY, cli


def _rows(run):
    return [{k: v for k, v in json.loads(line).items() if k != "time"}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


def _results(run):
    return {k: v for k, v in json.loads((run / "results.json").read_text()).items() if k != "wall_seconds"}


def test_a_stopped_run_resumes_to_the_uninterrupted_result(tiny_model_dir, tmp_path):
    args = ["launch", "--nproc", "2", "--config", QUICK, f"model.path={tiny_model_dir}", *TINY,
            "fed.rounds=3", "eval.initial=true", "eval.every=1", "output.save_adapter=true",
            "fed.algorithm=scaffold", "train.optimizer=sgd", "train.lr=0.05"]
    straight, resumed, stop = tmp_path / "straight", tmp_path / "resumed", tmp_path / "stop"
    done = cli(*args, f"output.dir={straight}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert not (straight / "checkpoints").exists()  # a finished run keeps no checkpoints

    stop.touch()
    first = cli(*args, f"output.dir={resumed}", env={"HPC_FED_STOP_FILE": str(stop)})
    assert first.returncode == 75, first.stderr[-3000:]  # not done: run it again
    assert (resumed / "stopped.json").is_file() and not (resumed / "results.json").exists()
    assert [p.name for p in (resumed / "checkpoints").iterdir()] == ["round-000001"]
    stop.unlink()

    changed = cli(*args, f"output.dir={resumed}", "fed.seed=1")  # would not be the same run
    assert changed.returncode == 2 and "fed.seed (0 -> 1)" in changed.stderr
    assert "checkpoint.allow_changes=[fed.seed]" in changed.stderr and "Traceback" not in changed.stderr
    assert (resumed / "stopped.json").is_file() and len(_rows(resumed)) == 1  # untouched

    second = cli(*args, f"output.dir={resumed}")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming" in second.stderr and "after round 1 of 3" in second.stderr
    assert _rows(resumed) == _rows(straight) and _results(resumed) == _results(straight)
    adapter = "adapter/adapter_model.safetensors"
    assert (resumed / adapter).read_bytes() == (straight / adapter).read_bytes()
    assert not (resumed / "checkpoints").exists() and not (resumed / "stopped.json").exists()

    again = cli(*args, f"output.dir={resumed}")  # a finished run is never overwritten silently
    assert again.returncode == 2 and "holds a finished run" in again.stderr
    assert _results(resumed) == _results(straight)


def test_the_local_baseline_stops_and_resumes_to_the_uninterrupted_result(tiny_model_dir, tmp_path):
    """baseline=local on 2 groups: every client's adapter is in the checkpoint."""
    args = ["launch", "--nproc", "2", "--config", QUICK, f"model.path={tiny_model_dir}", *TINY,
            "baseline=local", "fed.rounds=3", "fed.num_clients=3", "eval.initial=false"]
    straight, resumed, stop = tmp_path / "straight", tmp_path / "resumed", tmp_path / "stop"
    done = cli(*args, f"output.dir={straight}")
    assert done.returncode == 0, done.stderr[-3000:]
    stop.touch()
    first = cli(*args, f"output.dir={resumed}", env={"HPC_FED_STOP_FILE": str(stop)})
    assert first.returncode == 75, first.stderr[-3000:]
    assert json.loads((resumed / "stopped.json").read_text())["stopped_after_round"] == 1
    stop.unlink()
    second = cli(*args, f"output.dir={resumed}")
    assert second.returncode == 0 and "after round 1 of 3" in second.stderr, second.stderr[-3000:]
    assert _rows(resumed) == _rows(straight) and _results(resumed) == _results(straight)
    assert set(_results(resumed)["clients"]) == {"0", "1", "2"}
