"""Architectures other than the tiny LLaVA, end to end through the CLI. Their processors' batches
carry more than input_ids / attention_mask / pixel_values: LLaVA-NeXT has any-resolution tiles
and `image_sizes`; Idefics3 (SmolVLM's architecture) has images per row and
`pixel_attention_mask`; Gemma-3 has `token_type_ids` marking image tokens. Each trains
federatedly on 2 ranks at ZeRO-2 (two groups) and ZeRO-3 (one group of two). Each is scored and
evaluated on every view, with mixed image / text-only batches. The adapter holds LoRA on the
language model only, and the projector in full."""

from __future__ import annotations

import json

import pytest
from cli_helpers import QUICK, TINY, cli
from tiny_vlms import save_gemma3, save_idefics3, save_llava_next

BUILD = {"llava_next": (save_llava_next, "model.language_model.", "model.multi_modal_projector"),
         "idefics3": (save_idefics3, "model.text_model.", "model.connector"),
         "gemma3": (save_gemma3, "model.language_model.", "model.multi_modal_projector")}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {arch: build(root / arch) for arch, (build, _, _) in BUILD.items()}


@pytest.mark.parametrize("arch", sorted(BUILD))
@pytest.mark.parametrize("stage, ranks_per_client", [(2, 1), (3, 2)])
def test_architecture_trains_and_evaluates(models, tmp_path, arch, stage, ranks_per_client):
    out = tmp_path / "run"
    proc = cli("launch", "--nproc", "2", "--config", QUICK, f"model.path={models[arch]}", *TINY,
               f"train.zero_stage={stage}", f"fed.ranks_per_client={ranks_per_client}",
               "data.scenario=missing", "data.beta=0.5", "eval.modalities=[full,no_image]",
               "output.save_adapter=true", f"output.dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    final = json.loads((out / "results.json").read_text())["final"]
    assert final["samples"] == 16 and 0 <= final["accuracy"] <= 1
    assert final["views"]["no_image"]["samples"] == 16
    adapter = json.loads((out / "adapter" / "adapter_config.json").read_text())
    _, language, projector = BUILD[arch]
    assert adapter["target_modules"] and all(t.startswith(language) for t in adapter["target_modules"])
    assert adapter["modules_to_save"] == [projector]
