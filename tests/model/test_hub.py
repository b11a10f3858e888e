"""Hub ids where the Hub cannot be reached (cluster compute nodes): a model in the local Hub
cache loads from there without any network call; one that is not cached fails within seconds in
one line naming `hpc-fed download` (it took 2.5 min of retries before); remote code from the
Hub runs only at a pinned commit. The Hub cache is a local stand-in in huggingface_hub's layout,
and the endpoint is a closed local port, so no test reaches the real Hub."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
from cli_helpers import QUICK, ROOT, TINY, cli
from hub_helpers import CLOSED, COMMIT, hub_cache, hub_env

from hpc_fed.errors import ConfigError
from hpc_fed.model.config import ModelConfig
from hpc_fed.model.hub import check_remote_code
from hpc_fed.model.loading import load_processor

@pytest.mark.parametrize("offline", [True, False])
def test_a_cached_hub_id_trains_without_the_network(tiny_model_dir, tmp_path, offline):
    """With HF_HUB_OFFLINE=1, or with the Hub unreachable, model.path=org/name loads from the
    cache: a federated round runs and records the Hub id."""
    cache = hub_cache(tmp_path / "hub", "hpcfed/tiny-llava", tiny_model_dir)
    out = tmp_path / "run"
    start = time.time()
    proc = cli("train", "--config", QUICK, "model.path=hpcfed/tiny-llava", *TINY, f"output.dir={out}",
               env=hub_env(tmp_path, cache, offline))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Retrying" not in proc.stderr and time.time() - start < 300
    results = json.loads((out / "results.json").read_text())
    assert results["final"]["samples"] == 16
    assert results["provenance"]["base_model"]["location"] == "hpcfed/tiny-llava"


@pytest.mark.parametrize("command", ["train", "launch"])
@pytest.mark.parametrize("offline", [True, False])
def test_an_uncached_hub_id_fails_in_seconds_in_one_line(tmp_path, command, offline):
    start = time.time()
    proc = cli(command, "--config", QUICK, "model.path=hpcfed/not-cached", f"output.dir={tmp_path / 'run'}",
               env=hub_env(tmp_path, offline=offline))
    elapsed = time.time() - start
    assert proc.returncode == 2 and "Retrying" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, proc.stderr[-3000:]
    last = errors[0]
    assert last.startswith(f"hpc-fed {command}: error: model.path (hpcfed/not-cached) is a Hub id "
                           "that is not in the local cache"), last
    assert "hpc-fed download --config" in last
    assert ("HF_HUB_OFFLINE=1 is set" if offline else f"{CLOSED} does not answer") in last
    assert elapsed < 60, elapsed  # measured ~8 s (launch) and ~18 s (train, mostly start-up) on 2 CPU cores


def test_remote_code_from_the_hub_loads_at_its_pinned_commit(tmp_path):
    """model.revision picks the cached snapshot of that commit (two commits hold different
    weights); the model's own code, from the cache, runs through its Auto class and interface."""
    from remote_code_vlm import save_minicpmv

    other = "f" * 40
    cache = hub_cache(tmp_path / "hub", "hpcfed/tiny-minicpmv", save_minicpmv(tmp_path / "a" / "minicpmv"))
    shutil.copytree(save_minicpmv(tmp_path / "b" / "minicpmv", seed=1),
                    cache / "models--hpcfed--tiny-minicpmv" / "snapshots" / other)
    code = ("from hpc_fed.model.config import ModelConfig\n"
            "from hpc_fed.model.loading import load_base_model, load_interface, load_processor\n"
            "for rev in ('%s', '%s'):\n"
            "    cfg = ModelConfig(path='hpcfed/tiny-minicpmv', trust_remote_code=True, revision=rev)\n"
            "    p, m, i = load_processor(cfg), load_base_model(cfg), load_interface(cfg)\n"
            "    print(type(p).__name__, type(m).__name__, type(i).__name__,\n"
            "          round(float(m.llm.model.embed_tokens.weight.abs().sum()), 3))\n" % (COMMIT, other))
    env = {**os.environ, **hub_env(tmp_path, cache, offline=False), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Retrying" not in proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines()[-2:]]
    assert [r[:3] for r in rows] == [["MiniCPMVProcessor", "MiniCPMV", "MiniCPMVInterface"]] * 2
    import torch
    from safetensors.torch import load_file

    for row, folder in zip(rows, ("a", "b")):
        weights = load_file(tmp_path / folder / "minicpmv" / "model.safetensors")
        assert float(row[3]) == pytest.approx(float(weights["llm.model.embed_tokens.weight"].abs().sum()),
                                              abs=1e-2)
    assert not torch.isclose(torch.tensor(float(rows[0][3])), torch.tensor(float(rows[1][3])))


@pytest.mark.parametrize("revision, problem", [("", "model.revision is not set"),
                                               ("main", r"model.revision \(main\) is not a commit hash")])
def test_remote_code_from_the_hub_needs_a_pinned_commit(revision, problem):
    cfg = ModelConfig(path="hpcfed/some-model", trust_remote_code=True, revision=revision)
    expected = (f"runs code from the Hub id hpcfed/some-model, and {problem}; pin "
                r".*model.revision=<sha>.*model.allow_unpinned_remote_code=true")
    with pytest.raises(ConfigError, match=expected):
        load_processor(cfg)


def test_pinning_applies_to_hub_code_only():
    check_remote_code("hpcfed/some-model", True, COMMIT, False)  # pinned
    check_remote_code("hpcfed/some-model", True, "", True)  # the user accepts unpinned code
    check_remote_code("hpcfed/some-model", False, "", False)  # no code of its own runs
    check_remote_code(str(ROOT / "configs"), True, "", False)  # a folder here: nothing to pin
