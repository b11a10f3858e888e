"""A corpus of broken inputs, each given to the command a user would run. Every one must stop
before any worker starts (or, for `data describe`, before printing a table) with exit code 2 and
one line naming the file, key or sample and the fix: no traceback, and no run directory written.
(Faults during a run, signals, kills and stuck ranks: tests/runtime/test_faults.py.)"""

from __future__ import annotations

import json
import shutil

import pytest
from cli_helpers import QUICK, ROOT, cli

FIXTURES = ROOT / "tests" / "fixtures"
MEMES = ["data.name=hateful_memes", "fed.num_clients=2", "fed.sample_clients=2", "data.partition=iid"]


def _memes_copy(tmp_path, damage):
    root = tmp_path / "memes"
    shutil.copytree(FIXTURES / "hateful_memes", root)
    damage(root)
    return [*MEMES, f"data.root={root}"]


def _model_dir(tmp_path, config_text):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(config_text)
    return [f"model.path={model}"]


def _garbage_image(root):
    first = sorted((root / "img").iterdir())[0]
    first.write_bytes(b"\x00garbage, not a PNG" * 8)


def _empty_test(root):
    for name in ("dev_seen.jsonl", "test_seen.jsonl"):
        (root / name).write_text("")


CASES = {  # name -> (how to break it, command, what the one line must say)
    "yaml syntax": (lambda t: ["--config", str(_write(t / "bad.yaml", "fed: [1, 2\nrounds 3\n"))],
                    "launch", "bad.yaml"),
    "unknown key": (lambda t: ["--config", QUICK, "fed.roundz=3"], "launch", "fed.roundz"),
    "nproc 0": (lambda t: ["--nproc", "0", "--config", QUICK], "launch", "--nproc (0)"),
    "corrupted model config.json": (lambda t: ["--config", QUICK, *_model_dir(t, '{"model_type": "lla')],
                                    "launch", "config.json is not valid JSON"),
    "text-only model": (lambda t: ["--config", QUICK, *_model_dir(t, json.dumps({"model_type": "llama"}))],
                        "launch", "'llama' model, which is not a vision-language model"),
    "missing model folder": (lambda t: ["--config", QUICK, f"model.path={t / 'nowhere'}"], "launch",
                             "does not exist"),
    "empty test file": (lambda t: ["--config", QUICK, *_memes_copy(t, _empty_test)], "launch",
                        "the test split has no samples"),
    "more clients than samples": (lambda t: ["--config", QUICK, "data.max_train_samples=5",
                                             "fed.num_clients=8", "fed.sample_clients=2"], "launch",
                                  "fed.num_clients (8) exceeds the 5 training samples"),
    "garbage image bytes": (lambda t: ["--config", QUICK, *_memes_copy(t, _garbage_image)], "launch",
                            "cannot be read (UnidentifiedImageError"),
    "garbage image, data describe": (lambda t: [QUICK, *_memes_copy(t, _garbage_image)], "data describe",
                                     "data.on_error=skip"),
    "bad on_error value": (lambda t: ["--config", QUICK, "data.on_error=ignore"], "launch",
                           "data.on_error ('ignore') must be one of"),
}


def _write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_broken_input_stops_in_one_line(tmp_path, case):
    make, command, needle = CASES[case]
    out = tmp_path / "run"
    args = make(tmp_path)
    if command == "launch" and "--nproc" not in args:
        args = ["--nproc", "2", *args]
    proc = cli(*command.split(), *args, f"output.dir={out}", timeout=120)
    assert proc.returncode == 2, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and needle in errors[0], proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and not out.exists()


def test_unreadable_images_are_skipped_when_asked_and_listed(tmp_path):
    args = _memes_copy(tmp_path, _garbage_image)
    proc = cli("data", "describe", QUICK, *args, "data.on_error=skip", "--json", str(tmp_path / "p.json"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "left out (unreadable images, data.on_error=skip): 1 training sample(s)" in proc.stdout
    summary = json.loads((tmp_path / "p.json").read_text())
    assert summary["skipped"] == {"train": 1, "test": 0}
    assert sum(c["skipped"] for c in summary["clients"]) == 1
    assert summary["train_samples"] - 1 == sum(c["samples"] for c in summary["clients"])
