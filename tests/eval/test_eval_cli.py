"""`hpc-fed eval` and `hpc-fed predict` on a saved adapter, and model.adapter's checks."""

from __future__ import annotations

import json

import pytest
from cli_helpers import QUICK, TINY, cli

from hpc_fed.errors import ConfigError


@pytest.fixture(scope="module")
def trained(tiny_model_dir, tmp_path_factory):
    """A 2-round run with its adapter saved."""
    out = tmp_path_factory.mktemp("trained") / "run"
    args = [a for a in TINY if not a.startswith(("fed.rounds", "output.save_adapter"))]
    proc = cli("launch", "--nproc", "2", "--config", QUICK, f"model.path={tiny_model_dir}", *args,
               "fed.rounds=2", "output.save_adapter=true", f"output.dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_eval_of_a_saved_adapter_reproduces_the_runs_final_metrics(trained, tmp_path):
    out = tmp_path / "eval"
    proc = cli("eval", "--adapter", str(trained / "adapter"), "--nproc", "2", f"output.dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    final = json.loads((trained / "results.json").read_text())["final"]
    got = json.loads((out / "results.json").read_text())["final"]
    assert got["samples"] == final["samples"] and got["accuracy"] == final["accuracy"]
    assert got.get("views", {}).keys() == final.get("views", {}).keys()
    assert f"accuracy: {final['accuracy']:.4f} on {final['samples']} test samples" in proc.stdout
    base = tmp_path / "base"  # without an adapter: the base model, as the run's initial
    proc = cli("eval", "--config", str(trained / "config.yaml"), f"output.dir={base}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "base model" in proc.stdout


def test_predict_scores_options_or_replies(trained):
    import easy_vqa

    image = easy_vqa.get_test_image_paths()[0]
    proc = cli("predict", "--adapter", str(trained / "adapter"), "--image", image,
               "--question", "what color is the shape?", "--options", "red,green,blue")
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    probs = [float(line.split()[0]) for line in lines]
    assert len(lines) == 3 and probs == sorted(probs, reverse=True)
    assert sum(probs) == pytest.approx(1, abs=1e-3)
    assert {line.split()[1] for line in lines} == {"red", "green", "blue"}
    proc = cli("predict", "--adapter", str(trained / "adapter"), "--image", image,
               "--question", "what color is the shape?")
    assert proc.returncode == 0 and len(proc.stdout.strip().splitlines()) == 1, proc.stderr[-3000:]


def test_an_adapter_that_does_not_fit_is_refused(trained, tiny_model_dir):
    from hpc_fed.config import load_config
    from hpc_fed.model.loading import apply_lora, load_adapter, load_base_model

    adapter = str(trained / "adapter")
    with pytest.raises(ConfigError, match="has LoRA rank 8, model.lora.r is 4"):
        load_config(QUICK, [f"model.adapter={adapter}", "model.lora.r=4"])
    with pytest.raises(ConfigError, match="holds no adapter_config.json"):
        load_config(QUICK, [f"model.adapter={trained}"])
    cfg = load_config(QUICK, [f"model.path={tiny_model_dir}",
                              "model.lora.target_modules=[q_proj,v_proj]"])
    model = apply_lora(load_base_model(cfg.model), cfg.model.lora)
    with pytest.raises(ConfigError, match="holds .* tensor.* this adapter does not have"):
        load_adapter(model, adapter)
    cfg = load_config(QUICK, [f"model.path={tiny_model_dir}",
                              "model.lora.target_modules=[q_proj,k_proj,v_proj,o_proj,gate_proj]"])
    model = apply_lora(load_base_model(cfg.model), cfg.model.lora)
    with pytest.raises(ConfigError, match="lacks .* tensor"):
        load_adapter(model, adapter)
