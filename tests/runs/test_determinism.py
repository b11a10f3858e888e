"""Two runs with the same seeds and layout give identical metrics and adapters on CPU (timings
aside): every draw is keyed by (seed, round, ...), nothing depends on the wall clock or on
process scheduling, nor on whether batches are built ahead on a thread. (tests/runs/
test_resume.py adds a stop and a resume in between.)"""

from __future__ import annotations

import json

from cli_helpers import QUICK, TINY, cli


def _rows(run):
    return [{k: v for k, v in json.loads(line).items() if k != "time"}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_two_identical_runs_agree_bit_for_bit(tiny_model_dir, tmp_path):
    args = ["launch", "--nproc", "2", "--config", QUICK, f"model.path={tiny_model_dir}", *TINY,
            "fed.rounds=2", "eval.every=1", "output.save_adapter=true", "fed.algorithm=fedadam",
            "data.partition=dirichlet", "data.scenario=missing", "data.beta=0.4", "model.lora.dropout=0.1"]
    runs = [tmp_path / "a", tmp_path / "b"]
    # the second builds its batches ahead on a thread (data.prefetch): the same batches
    for run, prefetch in zip(runs, (0, 2)):
        proc = cli(*args, f"output.dir={run}", f"data.prefetch={prefetch}")
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert _rows(runs[0]) == _rows(runs[1]) and len(_rows(runs[0])) == 2
    adapter = "adapter/adapter_model.safetensors"
    assert (runs[0] / adapter).read_bytes() == (runs[1] / adapter).read_bytes()
    assert (runs[0] / "partition.json").read_text() == (runs[1] / "partition.json").read_text()
