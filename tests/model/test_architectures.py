"""Architectures other than the tiny LLaVA, end to end through the CLI. Their processors' batches
carry more than input_ids / attention_mask / pixel_values: LLaVA-NeXT has any-resolution tiles
and `image_sizes`; Idefics3 (SmolVLM's architecture) has images per row and
`pixel_attention_mask`; Gemma-3 has `token_type_ids` marking image tokens. Each trains
federatedly on 2 ranks at ZeRO-2 (two groups) and ZeRO-3 (one group of two): the loss falls and
the saved adapter moved. Each is scored and evaluated on every view, with mixed image /
text-only batches, and its images reach the model. The adapter holds LoRA on the language model
only, and the projector in full."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from cli_helpers import QUICK, TINY, cli
from tiny_vlms import save_gemma3, save_idefics3, save_llava_next

BUILD = {"llava_next": (save_llava_next, "model.language_model.", "model.multi_modal_projector"),
         "idefics3": (save_idefics3, "model.text_model.", "model.connector"),
         "gemma3": (save_gemma3, "model.language_model.", "model.multi_modal_projector")}
# 2 rounds of 4 local steps: enough for a random model's loss to fall in every layout
TRAIN = [*(a for a in TINY if not a.startswith(("fed.rounds", "train.local_steps"))),
         "fed.rounds=2", "train.local_steps=4"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {arch: build(root / arch) for arch, (build, _, _) in BUILD.items()}


@pytest.mark.parametrize("arch", sorted(BUILD))
@pytest.mark.parametrize("stage, ranks_per_client", [(2, 1), (3, 2)])
def test_architecture_trains_and_evaluates(models, tmp_path, arch, stage, ranks_per_client):
    out = tmp_path / "run"
    proc = cli("launch", "--nproc", "2", "--config", QUICK, f"model.path={models[arch]}", *TRAIN,
               f"train.zero_stage={stage}", f"fed.ranks_per_client={ranks_per_client}",
               "data.scenario=missing", "data.beta=0.5", "eval.modalities=[full,no_image]",
               "output.save_adapter=true", f"output.dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    final = json.loads((out / "results.json").read_text())["final"]
    assert final["samples"] == 16 and final["views"]["no_image"]["samples"] == 16
    adapter = json.loads((out / "adapter" / "adapter_config.json").read_text())
    _, language, projector = BUILD[arch]
    assert adapter["target_modules"] and all(t.startswith(language) for t in adapter["target_modules"])
    assert adapter["modules_to_save"] == [projector]
    _check_trained_model(out)


def _check_trained_model(out) -> None:
    """In this process, the base model with the run's LoRA before and after loading its saved
    adapter. Before, it is the run's starting point (LoRA B at zero, the projector as the
    base's): every one of those tensors moved, and the loss on easy-VQA training questions fell.
    Then the same prompts with their images swapped between samples score differently: the
    pixels reach the language model."""
    from hpc_fed.config import load_config
    from hpc_fed.data.collate import Collator
    from hpc_fed.data.datasets.easyvqa import load_easyvqa
    from hpc_fed.eval.scoring import option_loglik
    from hpc_fed.model.loading import (apply_lora, load_adapter, load_base_model, load_processor,
                                       trainable_parameters)

    cfg = load_config(str(out / "config.yaml"), [])
    collator = Collator(load_processor(cfg.model), cfg.data.prompt, cfg.data.list_options)
    model = apply_lora(load_base_model(cfg.model), cfg.model.lora).eval()
    batch = collator.train_batch(load_easyvqa("train")[:16])
    with torch.no_grad():
        loss_start = float(model(**batch).loss)
    start = {n: p.detach().clone() for n, p in trainable_parameters(model) if "lora_A" not in n}
    assert any("lora_B" in n for n in start) and any("modules_to_save" in n for n in start)
    load_adapter(model, str(out / "adapter"))
    trained = dict(trainable_parameters(model))
    unmoved = [n for n, p in start.items() if torch.equal(trained[n], p)]
    assert not unmoved, unmoved

    records = []
    for r in load_easyvqa("test"):  # 4 questions on 4 different images
        if r.image not in {x.image for x in records}:
            records.append(r)
        if len(records) == 4:
            break
    swapped = [dataclasses.replace(r, image=records[i - 1].image) for i, r in enumerate(records)]
    with torch.no_grad():
        loss_end = float(model(**batch).loss)
        scores = option_loglik(model, collator, records, torch.device("cpu"))
        other = option_loglik(model, collator, swapped, torch.device("cpu"))
    assert loss_end < loss_start, (loss_start, loss_end)
    gaps = [float((a - b).abs().max()) for a, b in zip(scores, other)]
    assert min(gaps) > 1e-5, gaps  # the smallest seen: 2e-4 (Idefics3's random vision tower)
