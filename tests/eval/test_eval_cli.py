"""`hpc-fed eval` and `hpc-fed predict` on a saved adapter, and model.adapter's checks."""

from __future__ import annotations

import json

import pytest
from cli_helpers import QUICK, TINY, cli

from hpc_fed.errors import ConfigError


VIEWS = "eval.modalities=[full,no_image,no_text]"


@pytest.fixture(scope="module")
def trained(prefit_model_dir, tmp_path_factory):
    """A 2-round run on a pre-fitted base, its adapter saved, scored before and after on every
    view of the test set."""
    out = tmp_path_factory.mktemp("trained") / "run"
    args = [a for a in TINY if not a.startswith(("fed.rounds", "train.local_steps", "data.max_test",
                                                 "eval.initial", "output.save_adapter"))]
    proc = cli("launch", "--nproc", "2", "--config", QUICK, f"model.path={prefit_model_dir}", *args,
               "fed.rounds=2", "train.local_steps=6", "data.max_test_samples=64", "eval.initial=true",
               VIEWS, "output.save_adapter=true", f"output.dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def _eval(out, *args):
    proc = cli("eval", *args, f"output.dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "results.json").read_text())["final"], proc.stdout


def _open_question_accuracy(metrics: dict) -> float:
    """Accuracy on the shape and colour questions, from the per-class report."""
    open_classes = [v for c, v in metrics["per_class"].items() if c not in ("yes", "no")]
    right = sum(round(v["recall"] * v["support"]) for v in open_classes)
    return right / sum(v["support"] for v in open_classes)


def test_eval_of_a_saved_adapter_reproduces_the_runs_final_metrics(trained, tmp_path):
    """Every metric of every view and class, bit for bit: the run's global model is what the
    saved adapter loads."""
    run = json.loads((trained / "results.json").read_text())
    final = run["final"]
    assert set(final["views"]) == {"no_image", "no_text"} and final["per_class"]
    got, stdout = _eval(tmp_path / "eval", "--adapter", str(trained / "adapter"), "--nproc", "2")
    assert got == final
    assert f"accuracy: {final['accuracy']:.4f} on {final['samples']} test samples" in stdout


def test_eval_without_the_adapter_scores_the_base_as_the_runs_initial(trained, tmp_path):
    """The base model, as the run scored it before training; it scores differently from the
    trained adapter on every view, so a reload that missed the adapter could not pass above."""
    run = json.loads((trained / "results.json").read_text())
    base, stdout = _eval(tmp_path / "base", "--config", str(trained / "config.yaml"), "--nproc", "2")
    assert "base model" in stdout
    assert base == run["initial"]
    # the pre-fitted base tells shapes and colours apart (chance: 1/3 and 1/8)
    assert _open_question_accuracy(base) > 0.5, base["per_class"]
    final = run["final"]
    for view in ("full", "no_image", "no_text"):
        a, b = (base, final) if view == "full" else (base["views"][view], final["views"][view])
        assert a["nll"] != b["nll"], view
    assert base["accuracy"] != final["accuracy"]


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


def test_an_adapter_that_does_not_fit_is_refused(trained, prefit_model_dir):
    from hpc_fed.config import load_config
    from hpc_fed.model.loading import apply_lora, load_adapter, load_base_model

    adapter = str(trained / "adapter")
    with pytest.raises(ConfigError, match="has LoRA rank 8, model.lora.r is 4"):
        load_config(QUICK, [f"model.adapter={adapter}", "model.lora.r=4"])
    with pytest.raises(ConfigError, match="holds no adapter_config.json"):
        load_config(QUICK, [f"model.adapter={trained}"])
    cfg = load_config(QUICK, [f"model.path={prefit_model_dir}",
                              "model.lora.target_modules=[q_proj,v_proj]"])
    model = apply_lora(load_base_model(cfg.model), cfg.model.lora)
    with pytest.raises(ConfigError, match="holds .* tensor.* this adapter does not have"):
        load_adapter(model, adapter)
    cfg = load_config(QUICK, [f"model.path={prefit_model_dir}",
                              "model.lora.target_modules=[q_proj,k_proj,v_proj,o_proj,gate_proj]"])
    model = apply_lora(load_base_model(cfg.model), cfg.model.lora)
    with pytest.raises(ConfigError, match="lacks .* tensor"):
        load_adapter(model, adapter)
