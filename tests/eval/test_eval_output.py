"""Where `hpc-fed eval` writes: a new folder, or an evaluation of its own, which it replaces;
never a training run's directory or a folder of a user's, which it refuses before starting."""

from __future__ import annotations

import hashlib
import json

import pytest
from cli_helpers import QUICK, TINY, cli

from hpc_fed.runtime.owned import MARKER


def _hashes(root):
    """Every file under root -> sha256 of its bytes."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def trained(tiny_model_dir, tmp_path_factory):
    """A finished one-round run (world of one) with its adapter saved."""
    out = tmp_path_factory.mktemp("trained") / "run"
    args = [a for a in TINY if not a.startswith("output.save_adapter")]
    proc = cli("train", "--config", QUICK, f"model.path={tiny_model_dir}", *args,
               "output.save_adapter=true", f"output.dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_eval_into_a_training_runs_folder_is_refused_and_leaves_it_byte_identical(trained):
    before = _hashes(trained)
    assert {"adapter/adapter_model.safetensors", "results.json", "metrics.jsonl", "config.yaml",
            MARKER} <= set(before)
    proc = cli("eval", "--adapter", str(trained / "adapter"), "data.max_test_samples=16",
               f"output.dir={trained}")
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("hpc-fed eval: error: output.dir ") and "holds a training run" in line
    assert "leave output.dir out for a new runs/eval-<time>" in line
    assert _hashes(trained) == before


def test_eval_writes_a_new_folder_and_replaces_only_its_own(trained, tmp_path):
    out = tmp_path / "eval"
    for samples in (16, 8):  # the second run replaces the first: eval wrote it
        proc = cli("eval", "--adapter", str(trained / "adapter"), f"data.max_test_samples={samples}",
                   f"output.dir={out}")
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert f"on {samples} test samples" in proc.stdout and str(out / "results.json") in proc.stdout
        assert json.loads((out / "results.json").read_text())["final"]["samples"] == samples
    assert json.loads((out / MARKER).read_text())["kind"] == "eval"
    user = tmp_path / "mine"
    user.mkdir()
    (user / "results.json").write_text('{"my": "numbers"}')
    proc = cli("eval", "--adapter", str(trained / "adapter"), f"output.dir={user}")
    assert proc.returncode == 2 and "holds files hpc_fed did not write" in proc.stderr
    assert [p.name for p in user.iterdir()] == ["results.json"]
    assert (user / "results.json").read_text() == '{"my": "numbers"}'
