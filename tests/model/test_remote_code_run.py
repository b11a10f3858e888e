"""A remote-code model (the tiny MiniCPM-V stand-in of tests/remote_code_vlm.py, loaded with
model.trust_remote_code=true from a folder) through the CLI: federated training on 2 ranks at
ZeRO-2 (two client groups, scoring evaluation) and ZeRO-3 (one group of two, generation), with
missing-modality rows and the no-image view. The adapter holds LoRA on the llm only and the
resampler in full, and training moved it."""

from __future__ import annotations

import json
import math

import pytest
from cli_helpers import QUICK, TINY, cli
from remote_code_vlm import save_minicpmv


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return save_minicpmv(tmp_path_factory.mktemp("remote") / "minicpmv")


@pytest.mark.parametrize("stage, ranks_per_client, mode", [(2, 1, "scoring"), (3, 2, "generation")])
def test_a_remote_code_model_trains_federatedly_and_evaluates(models, tmp_path, stage, ranks_per_client,
                                                              mode):
    from safetensors.torch import load_file

    out = tmp_path / "run"
    proc = cli("launch", "--nproc", "2", "--config", QUICK, f"model.path={models}",
               "model.trust_remote_code=true", *TINY, f"train.zero_stage={stage}",
               f"fed.ranks_per_client={ranks_per_client}", "data.scenario=missing", "data.beta=0.5",
               "eval.modalities=[full,no_image]", f"eval.mode={mode}", "eval.max_new_tokens=3",
               "output.save_adapter=true", f"output.dir={out}", timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows and all(math.isfinite(r["train_loss"]) and r["train_loss"] > 0 for r in rows)
    final = json.loads((out / "results.json").read_text())["final"]
    assert final["samples"] == 16 and 0 <= final["accuracy"] <= 1
    no_image = final["views"]["no_image"]
    assert no_image["samples"] == 16
    if mode == "scoring":  # the images reach the model: removing them changes the scores
        assert math.isfinite(final["nll"]) and final["nll"] != no_image["nll"]
    adapter = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert adapter["target_modules"] and all(t.startswith("llm.") for t in adapter["target_modules"])
    assert adapter["modules_to_save"] == ["resampler"]
    weights = load_file(out / "adapter" / "adapter_model.safetensors")
    lora_b = [v for k, v in weights.items() if "lora_B" in k]
    assert lora_b and any(v.abs().sum() > 0 for v in lora_b)  # zero at init: training moved it
