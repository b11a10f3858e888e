"""LoRA and modules_to_save land on the parts the config names, for every architecture: the
language model by default (never the vision encoder by accident), the projector by role, and a
name that matches nothing stops with the model's candidates (hpc_fed/model/roles.py)."""

from __future__ import annotations

import pytest
import torch
from tiny_vlms import EXPECTED_ROLES, tiny_vlm

from hpc_fed.errors import ConfigError
from hpc_fed.model.config import LoraSettings
from hpc_fed.model.loading import apply_lora, trainable_parameters
from hpc_fed.model.roles import module_roles

ARCHS = sorted(EXPECTED_ROLES)
ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]


@pytest.mark.parametrize("arch", ARCHS)
def test_roles_and_default_adapter(arch):
    torch.manual_seed(0)
    model = tiny_vlm(arch)
    roles = module_roles(model)
    assert (roles.language, roles.vision, roles.projector) == EXPECTED_ROLES[arch]
    peft_model = apply_lora(model, LoraSettings(r=2))
    names = [n for n, _ in trainable_parameters(peft_model)]
    lora = [n for n in names if ".lora_" in n]
    saved = [n for n in names if ".lora_" not in n]
    language, vision, projector = (f"base_model.model.{p}." for p in EXPECTED_ROLES[arch])
    assert lora and all(n.startswith(language) for n in lora)  # nothing on the vision encoder
    assert {n.rsplit(".lora_", 1)[0].rsplit(".", 1)[-1] for n in lora} == set(ATTENTION)
    assert saved and all(n.startswith(projector) and "modules_to_save" in n for n in saved)


@pytest.mark.parametrize("arch", ["idefics3", "qwen2_vl"])
def test_vision_scope_adds_the_vision_encoder_but_never_the_projector(arch):
    model = tiny_vlm(arch)
    targets = [*ATTENTION, "qkv", "proj"] if arch == "qwen2_vl" else ATTENTION  # Qwen2-VL's ViT names
    peft_model = apply_lora(model, LoraSettings(r=2, scope=["language", "vision"], modules_to_save=[],
                                                target_modules=targets))
    names = [n for n, _ in trainable_parameters(peft_model)]
    _, vision, projector = (f"base_model.model.{p}." for p in EXPECTED_ROLES[arch])
    assert any(n.startswith(vision) for n in names)
    assert not any(n.startswith(projector) for n in names)


@pytest.mark.parametrize("arch", ARCHS)
def test_adaptive_window_covers_the_language_models_layers_only(arch):
    """fed.regularizer=adaptive regularizes decoder layers s..L-1-s of the language model, found
    by role, even with LoRA on the vision encoder (whose blocks are numbered `layers` too)."""
    from hpc_fed.fed.regularizers import decoder_layer, num_decoder_layers, prox_weights

    model = tiny_vlm(arch)
    roles = module_roles(model)
    targets = [*ATTENTION, "qkv", "proj"] if arch == "qwen2_vl" else ATTENTION
    peft_model = apply_lora(model, LoraSettings(r=2, scope=["language", "vision"],
                                                target_modules=targets), roles)
    names = [n for n, _ in trainable_parameters(peft_model)]
    layers = num_decoder_layers(model.config)
    s = 1 if layers >= 3 else 0
    w = prox_weights(names, "adaptive", 0.01, 1.0, s_layer=s, num_layers=layers,
                     language=roles.language)
    on = [n for n in names if w[n] > 0]
    assert {decoder_layer(n, roles.language) for n in on} == set(range(s, layers - s))
    assert all(n.startswith(f"base_model.model.{roles.language}.") for n in on)
    assert any(n.startswith(f"base_model.model.{roles.vision}.") for n in names)  # present, off


def test_names_that_match_nothing_are_refused_with_the_candidates():
    with pytest.raises(ConfigError, match=r"'query' matches no linear layer of the language .*'q_proj'"):
        apply_lora(tiny_vlm("idefics3"), LoraSettings(target_modules=["q_proj", "query"]))
    with pytest.raises(ConfigError, match=r"'multi_modal_projector' matches no module of Idefics3"):
        apply_lora(tiny_vlm("idefics3"), LoraSettings(modules_to_save=["multi_modal_projector"]))


def test_minicpm_v_names_resolve_without_running_its_remote_code():
    """MiniCPM-V (trust_remote_code, the FedMLLM paper's model) calls its parts llm / vpm /
    resampler; a module tree of that shape gets LoRA on the llm only."""
    from torch import nn

    from hpc_fed.model.roles import lora_targets, modules_to_save

    def block():
        return nn.ModuleDict({"q_proj": nn.Linear(4, 4), "v_proj": nn.Linear(4, 4)})

    model = nn.Module()
    model.llm = nn.ModuleDict({"layers": nn.ModuleList([block(), block()])})
    model.vpm = nn.ModuleDict({"encoder": nn.ModuleList([block()])})
    model.resampler = nn.ModuleDict({"proj": nn.Linear(4, 4)})
    roles = module_roles(model)
    assert (roles.language, roles.vision, roles.projector) == ("llm", "vpm", "resampler")
    assert lora_targets(model, roles, ["q_proj", "v_proj"], ["language"]) == [
        "llm.layers.0.q_proj", "llm.layers.0.v_proj", "llm.layers.1.q_proj", "llm.layers.1.v_proj"]
    assert modules_to_save(model, roles, ["projector"]) == ["resampler"]
