"""The real CLI, end to end, on the offline tiny setup."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).parents[1]
QUICK = str(ROOT / "configs" / "quickstart.yaml")
SMALL = ["fed.rounds=2", "train.local_steps=2", "train.micro_batch_size=4", "data.max_train_samples=200",
         "data.max_test_samples=32", "eval.batch_size=16"]


def _hpc_fed(*args, timeout=300, env=None):
    return subprocess.run([sys.executable, "-m", "hpc_fed", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def _strict_counts(stderr: str) -> tuple[int, int]:
    """(hpc_fed, library) collectives that rank 0's strict guard checked (tests/conftest.py)."""
    match = re.search(r"strict collectives: (\d+) hpc_fed collectives and (\d+) library", stderr)
    assert match, "strict collectives were not on: " + stderr[-2000:]
    return int(match.group(1)), int(match.group(2))


def test_launch_two_ranks_writes_the_run_directory_contract(tiny_model_dir, tmp_path):
    """Through launchers/single_node.sh (hpc-fed launch, torchrun) on 2 ranks."""
    out = tmp_path / "run"
    proc = subprocess.run(
        [str(ROOT / "launchers/single_node.sh"), QUICK, f"model.path={tiny_model_dir}", *SMALL,
         f"output.dir={out}", "data.name=easyvqa_claims", "data.scenario=missing", "data.beta=0.4",
         "eval.modalities=[full,no_image,no_text]", "output.tags.method=FedAvg"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NPROC": "2", "HPC_FED_PYTHON": sys.executable})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "auc: initial" in proc.stdout and "eval AUC" in proc.stdout  # the claims task's headline
    assert _strict_counts(proc.stderr)[0] > 0  # every collective went through the owner
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["round"] for r in rows] == [0, 1]
    for r in rows:
        assert {"round", "lr", "clients", "train_loss", "eval", "time"} <= set(r)
        assert len(r["clients"]) == 4 and {"id", "group", "samples", "train_loss"} <= set(r["clients"][0])
        assert {"local_train", "aggregate", "round"} <= set(r["time"])
    results = json.loads((out / "results.json").read_text())
    assert {"accuracy", "nll", "samples", "macro_f1", "weighted_f1", "auc", "per_class",
            "views"} <= set(results["initial"])
    assert results["final"]["samples"] == 32 and set(results["final"]["views"]) == {"no_image", "no_text"}
    assert results["final"]["views"]["no_text"]["samples"] == 32
    assert results["primary_metric"] == "auc" and results["tags"] == {"method": "FedAvg"}
    assert results["world_size"] == 2 and results["client_groups"] == 2
    assert rows[-1]["eval"] == results["final"]
    part = json.loads((out / "partition.json").read_text())
    assert sum(c["samples"] for c in part["clients"]) == 200 and len(part["clients"]) == 10
    assert part["scenario"] == "missing" and sum(c["modalities"]["neither"] for c in part["clients"]) > 0
    assert "fed:" in (out / "config.yaml").read_text()

    # the saved adapter loads through peft onto the base model and changes its outputs
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    base = AutoModelForImageTextToText.from_pretrained(tiny_model_dir)
    ids = torch.tensor([[5, 6, 7, 8]])
    before = base(input_ids=ids).logits
    tuned = PeftModel.from_pretrained(base, str(out / "adapter")).eval()
    assert not torch.allclose(tuned(input_ids=ids).logits, before)


def test_train_as_world_of_one_builds_the_tiny_model_when_missing(tmp_path):
    model = tmp_path / "models" / "tiny"
    out = tmp_path / "run"
    proc = _hpc_fed("train", "--config", QUICK, "model.path=tiny", f"model.tiny.dir={model}",
                    "model.tiny.prefit_steps=3",
                    *SMALL, "fed.rounds=1", "eval.initial=false", f"output.dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((model / "hpc_fed_tiny.json").read_text())
    assert manifest["prefit"]["steps"] == 3 and "heldout_accuracy" in manifest["prefit"]
    results = json.loads((out / "results.json").read_text())
    assert results["initial"] is None and results["world_size"] == 1


def test_bad_config_stops_before_launch_with_one_clear_message(tmp_path):
    proc = _hpc_fed("launch", "--nproc", "2", "--config", QUICK, "fed.sample_clients=20")
    assert proc.returncode == 2
    assert "fed.sample_clients (20)" in proc.stderr and "Traceback" not in proc.stderr
    proc = _hpc_fed("launch", "--nproc", "2", "--config", QUICK, "fed.ranks_per_client=3")
    assert proc.returncode == 2 and "fed.ranks_per_client (3)" in proc.stderr
    # a mistyped folder or a Hub id is never built into a tiny model: one line naming it
    run = f"output.dir={tmp_path / 'run'}"
    proc = _hpc_fed("train", "--config", QUICK, f"model.path={tmp_path / 'none'}", run)
    assert proc.returncode == 2 and "does not exist" in proc.stderr and "make-tiny-model" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "none").exists()
    proc = _hpc_fed("train", "--config", QUICK, "model.path=llava-hf/llava-1.5-7b-hf", run,
                    env={"HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 2 and "llava-hf/llava-1.5-7b-hf" in proc.stderr
    assert "Traceback" not in proc.stderr and not (ROOT / "llava-hf").exists()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    proc = _hpc_fed("train", "--config", QUICK, f"model.path={tmp_path / 'broken'}", run)
    assert proc.returncode == 2 and str(tmp_path / "broken") in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()  # nothing written by runs that failed at startup


def test_generation_mode_end_to_end_under_torchrun_with_zero3_groups(tiny_model_dir, tmp_path):
    """eval.mode=generation through the real launcher: 2 ranks in one ZeRO-3 group decode in step."""
    out = tmp_path / "run"
    proc = _hpc_fed("launch", "--nproc", "2", "--config", QUICK, f"model.path={tiny_model_dir}", *SMALL,
                    "data.name=easyvqa_memes", "eval.mode=generation", "eval.max_new_tokens=4",
                    "fed.ranks_per_client=2", "train.zero_stage=3", "fed.sample_clients=2",
                    "eval.modalities=[full,no_image]", f"output.dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    ours, library = _strict_counts(proc.stderr)  # ZeRO-3's gathers and our trace check included
    assert ours > 0 and library > 0
    results = json.loads((out / "results.json").read_text())
    final = results["final"]
    assert results["primary_metric"] == "accuracy" and results["client_groups"] == 1
    assert final["samples"] == 32 and 0 <= final["invalid_rate"] <= 1 and "macro_f1" in final
    assert final["views"]["no_image"]["samples"] == 32


def test_commands_that_train_refuse_to_run_without_a_config(tmp_path):
    """No silent built-in defaults: train / launch / bench without --config name the shipped
    configs instead (they used to run 10 rounds of defaults for minutes)."""
    for command in ("train", "launch", "bench"):
        proc = _hpc_fed(command, "fed.rounds=1", f"output.dir={tmp_path / command}", timeout=60)
        assert proc.returncode == 2, proc.stderr[-2000:]
        line = proc.stderr.strip().splitlines()[-1]
        assert f"hpc-fed {command} needs --config" in line and "configs/quickstart.yaml" in line
        assert not (tmp_path / command).exists()


def test_one_spelling_for_the_config_everywhere():
    """--config works for every subcommand that takes one; the old positional still does."""
    smoke = str(ROOT / "configs" / "benchmark" / "smoke.yaml")
    for args in (["benchmark", "--config", smoke, "--list"], ["benchmark", smoke, "--list"],
                 ["sweep", "--list", "--config", smoke]):
        proc = _hpc_fed(*args, timeout=120)
        assert proc.returncode == 0 and "FedAvg" in proc.stdout, proc.stderr[-2000:]
    proc = _hpc_fed("data", "describe", "--config", QUICK, "data.max_train_samples=100", timeout=120)
    assert proc.returncode == 0 and "client" in proc.stdout, proc.stderr[-2000:]
    proc = _hpc_fed("benchmark", "--config", smoke, QUICK, "--list", timeout=60)
    assert proc.returncode == 2 and "two configs given" in proc.stderr
    for command in ("train", "launch", "bench", "benchmark", "sweep", "prepare"):
        help_text = _hpc_fed(command, "--help", timeout=60).stdout
        assert "--config" in help_text, command


def test_a_closed_pipe_ends_a_listing_quietly():
    """`hpc-fed benchmark --list | head -1`: the reader goes away, the command ends with no
    traceback (it printed BrokenPipeError's before)."""
    import subprocess
    import sys

    smoke = str(ROOT / "configs" / "benchmark" / "smoke.yaml")
    proc = subprocess.Popen([sys.executable, "-m", "hpc_fed.cli", "benchmark", "--config", smoke,
                             "--list"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # no reader: the first write fails with EPIPE
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0 and "Traceback" not in err, err[-2000:]


def test_the_rank_entry_prints_its_help_and_exits_0():
    """`python -m hpc_fed.train --help`: torch's error recorder turns argparse's exit into None,
    which must still end the process with 0, not a traceback."""
    proc = subprocess.run([sys.executable, "-m", "hpc_fed.train", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "usage:" in proc.stdout and "Traceback" not in proc.stderr, proc.stderr
