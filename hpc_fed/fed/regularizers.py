"""Client-side proximal regularizers, as a loss term on the trainable (adapter) parameters.

  prox      FedProx (Li et al. 2020): + (mu/2) * ||w_local - w_global||^2 over all of them.
  adaptive  FedMLLM's modality-agnostic strategy: the same term with weight mu * mu_w, only on
            parameters of the language model's decoder layers l with s <= l <= L-1-s (L decoder
            layers, s = fed.s_layer); the vision encoder (LoRA with model.lora.scope=[language,
            vision]), the projector and anything outside numbered decoder layers are not
            regularized. The language model is found by its role (model/roles.py), so the window
            is the same for LLaVA's `language_model`, Idefics3's `text_model` or MiniCPM-V's `llm`.

`fed.regularizer` adds it to any method (null: the method's default, prox for FedProx). The term
needs the full adapter on each rank, so it runs at ZeRO stages 0-2 (config check).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch

from hpc_fed.errors import ConfigError
from hpc_fed.fed.terms import ClientTerm

REGULARIZERS = ("none", "prox", "adaptive")  # the values of fed.regularizer
_DECODER_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.")


def decoder_layer(name: str, language: str) -> int | None:
    """The index of the language model's decoder layer that parameter `name` (peft-wrapped or
    not) belongs to, or None (vision encoder, projector, embeddings, ...). `language` is the
    language model's module name (ModuleRoles.language, e.g. model.language_model)."""
    at = ("." + name).find("." + language + ".")
    if at < 0:
        return None
    m = _DECODER_LAYER.search(name[at + len(language) + 1:])
    return int(m.group(1)) if m else None


def prox_weights(names: Sequence[str], kind: str, mu: float, mu_w: float, s_layer: int,
                 num_layers: int, language: str | None = None) -> dict[str, float]:
    """Per-parameter weight of the proximal term (0 = not regularized)."""
    if kind == "prox":
        return {n: mu for n in names}
    if kind != "adaptive":
        raise ConfigError(f"fed.regularizer ({kind!r}) must be one of {REGULARIZERS}")
    if not language:
        raise ValueError("the adaptive window needs the language model's module name (roles)")
    lo, hi = s_layer, num_layers - 1 - s_layer
    if lo > hi:
        raise ConfigError(f"fed.s_layer ({s_layer}) leaves no decoder layer of this {num_layers}-layer "
                          f"model in the window [s, L-1-s]; lower fed.s_layer below {num_layers / 2}")
    weights = {}
    for n in names:
        layer = decoder_layer(n, language)
        weights[n] = mu * mu_w if layer is not None and lo <= layer <= hi else 0.0
    if names and not any(weights.values()):
        raise ConfigError(f"fed.regularizer=adaptive: no adapter parameter lies in decoder layers "
                          f"{lo}..{hi} of the language model ({language}), so the run would be plain "
                          "FedAvg; put LoRA on the language model (model.lora.scope) or use "
                          "fed.regularizer=prox")
    return weights


class ProximalTerm(ClientTerm):
    """sum_n weight_n / 2 * ||p_n - anchor_n||^2 over the regularized parameters."""

    def __init__(self, weights: dict[str, float], anchor: dict[str, torch.Tensor]):
        self.weights = {n: w for n, w in weights.items() if w > 0}
        self.anchor = anchor

    def __call__(self, named_params: Sequence[tuple[str, torch.Tensor]]) -> torch.Tensor:
        total = None
        for n, p in named_params:
            w = self.weights.get(n)
            if w:
                term = 0.5 * w * (p.float() - self.anchor[n].float()).pow(2).sum()
                total = term if total is None else total + term
        return total if total is not None else torch.zeros(())


class Regularizer:
    """A proximal regularizer with fixed per-parameter weights; one term per client, anchored
    at the round's global adapter."""

    def __init__(self, weights: dict[str, float]):
        self.weights = {n: w for n, w in weights.items() if w > 0}

    def term(self, global_adapter: dict[str, torch.Tensor], device) -> ProximalTerm:
        return ProximalTerm(self.weights, {n: global_adapter[n].to(device) for n in self.weights})


def build_regularizer(fed, names: Sequence[str], num_layers: int,
                      language: str | None = None) -> Regularizer | None:
    """fed.regularizer over the adapter parameters `names`; None for none."""
    if fed.regularizer in (None, "none"):
        return None
    return Regularizer(prox_weights(names, fed.regularizer, fed.prox_mu, fed.mu_w, fed.s_layer,
                                    num_layers, language))


def num_decoder_layers(model_config) -> int:
    text = getattr(model_config, "text_config", None) or model_config
    return int(text.num_hidden_layers)
