"""A model with its own code (trust_remote_code), loaded from a folder the test writes: a tiny
stand-in with MiniCPM-V 2.6's interface (tests/remote_code_vlm.py). Its config.json registers
AutoModel only, its forward takes a `data` dict and returns no loss, its generate returns the
new tokens only, and its processor lays images out as nested lists; hpc_fed chooses the Auto
class from the model's auto_map and talks to it through its family's interface."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from remote_code_vlm import save_minicpmv

from hpc_fed.data.collate import IGNORE_INDEX, Collator, blank_image_path
from hpc_fed.data.datasets.easyvqa import load_easyvqa
from hpc_fed.errors import ConfigError
from hpc_fed.eval.generate import generate_replies
from hpc_fed.eval.scoring import option_loglik
from hpc_fed.model.config import LoraSettings, ModelConfig
from hpc_fed.model.interfaces.minicpmv import MiniCPMVInterface, positions
from hpc_fed.model.loading import (apply_lora, load_base_model, load_interface, load_processor,
                                   trainable_parameters)

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def minicpmv(tmp_path_factory):
    """(config, collator, base model) of the tiny remote-code model."""
    cfg = ModelConfig(path=save_minicpmv(tmp_path_factory.mktemp("remote") / "minicpmv"),
                      trust_remote_code=True)
    collator = Collator(load_processor(cfg), interface=load_interface(cfg))
    return cfg, collator, load_base_model(cfg).eval()


def _records(n=4):
    return list(load_easyvqa("test")[:n])


def test_the_model_loads_through_the_auto_class_its_config_registers(minicpmv):
    cfg, collator, model = minicpmv
    assert type(model).__name__ == "MiniCPMV" and type(model).__module__.startswith("transformers_modules")
    assert isinstance(collator.interface, MiniCPMVInterface)
    assert type(collator.processor).__name__ == "MiniCPMVProcessor"
    with pytest.raises(ConfigError, match="its own code .*auto_map: AutoModel.*model.trust_remote_code=true"):
        load_base_model(dataclasses.replace(cfg, trust_remote_code=False))


def test_the_loss_is_transformers_causal_lm_loss_on_the_answer_tokens(minicpmv):
    """The remote forward returns logits only; the interface's loss equals the language model's
    own loss (transformers' shifted cross-entropy) on the same embeddings, over the answer tokens."""
    _, collator, model = minicpmv
    batch = collator.train_batch(_records())
    labelled = batch["labels"] != IGNORE_INDEX
    answers = [collator.tokenizer.decode(batch["input_ids"][i][labelled[i]]) for i in range(4)]
    assert answers == [f"{r.answer} <|im_end|>" for r in _records()]
    with torch.no_grad():
        got = collator.interface.forward(model, batch).loss
        data = {k: batch[k] for k in ("input_ids", "pixel_values", "tgt_sizes", "image_bound")}
        embeds, _ = model.get_vllm_embedding(data)
        ref = model.llm(inputs_embeds=embeds, attention_mask=batch["attention_mask"],
                        position_ids=positions(batch["attention_mask"]), labels=batch["labels"]).loss
    assert torch.isfinite(got) and torch.allclose(got, ref, atol=1e-6)


def test_images_reach_the_model_and_rows_do_not_depend_on_their_batch(minicpmv):
    _, collator, model = minicpmv
    records = _records()
    together = option_loglik(model, collator, records, CPU)
    alone = [option_loglik(model, collator, [r], CPU)[0] for r in records]
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(together, alone))
    other_image = [dataclasses.replace(r, image=blank_image_path(), image_bytes=None) for r in records]
    no_image = [dataclasses.replace(r, image=None) for r in records]
    for changed in (other_image, no_image):
        scores = option_loglik(model, collator, changed, CPU)
        assert all(not torch.allclose(a, b, atol=1e-4) for a, b in zip(scores, together))


def test_generation_decodes_each_row_as_alone(minicpmv):
    """Left-padded prompts of different lengths (with and without an image): each row's reply is
    the one it gets alone, cut at the model's terminator."""
    _, collator, model = minicpmv
    records = [*_records(2), dataclasses.replace(_records(3)[2], image=None)]
    together = generate_replies(model, collator, records, CPU, torch.float32, max_new_tokens=6)
    alone = [generate_replies(model, collator, [r], CPU, torch.float32, max_new_tokens=6)[0]
             for r in records]
    assert together == alone and all(isinstance(r, str) for r in together)
    batch = collator.generation_batch(records)
    ids = collator.interface.generate(model, batch, tokenizer=collator.tokenizer, max_new_tokens=6)
    end = collator.tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    for row in ids.tolist():  # nothing but padding after a terminator
        if any(t in end for t in row):
            first = min(row.index(t) for t in end if t in row)
            assert set(row[first:]) == {collator.tokenizer.pad_token_id}


def test_lora_goes_on_the_llm_and_the_resampler_trains_in_full(minicpmv):
    cfg, collator, _ = minicpmv
    for settings, extra in ((LoraSettings(r=4), ()),
                            (LoraSettings(r=4, modules_to_save=["projector", "embed_tokens"]),
                             ("llm.model.embed_tokens",))):
        torch.manual_seed(0)
        model = apply_lora(load_base_model(cfg), settings).train()
        names = [n for n, _ in trainable_parameters(model)]
        lora = [n for n in names if "lora_" in n]
        assert lora and all(".llm.model.layers." in n for n in lora)
        assert not any(".vpm." in n for n in names)
        full = sorted({n.split(".modules_to_save.")[0].removeprefix("base_model.model.")
                       for n in names if ".modules_to_save." in n})
        assert full == sorted(["resampler", *extra])
        loss = collator.interface.forward(model, collator.train_batch(_records())).loss
        loss.backward()
        assert all(p.grad is not None for _, p in trainable_parameters(model))
