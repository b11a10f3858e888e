"""Load a Hugging Face image-text-to-text model and processor, and wrap it with LoRA.

The same Auto-class path serves the local tiny model and real models (local path or hub name).
`trust_remote_code` stays off unless `model.trust_remote_code=true`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from hpc_fed.model.config import TINY, LoraSettings, ModelConfig
from hpc_fed.model.roles import ModuleRoles, lora_targets, module_roles, modules_to_save
from hpc_fed.errors import ConfigError


def _check_path(cfg: ModelConfig) -> str:
    """The folder or Hub id to load; a ConfigError naming model.path when it cannot be one."""
    where = cfg.location
    p = Path(where)
    looks_local = p.is_absolute() or where.startswith((".", "~")) or p.exists() or len(p.parts) != 2
    if looks_local and not (p / "config.json").is_file():
        what = "does not exist" if not p.exists() else "holds no config.json"
        raise ConfigError(f"model.path ({where}) {what}; point model.path at a saved model folder or "
                          "a Hub id, or use model.path=tiny for the offline tiny model (`hpc-fed "
                          "make-tiny-model DIR` builds one)")
    return where


def preflight(cfg: ModelConfig) -> None:
    """Before any process starts: a saved model folder must hold a readable config.json of a
    vision-language architecture (the tiny model is built later; a Hub id is checked on load)."""
    if cfg.path == TINY:
        return
    where = _check_path(cfg)
    config = Path(where) / "config.json"
    if not config.is_file():
        return  # a Hub id
    try:
        model_type = json.loads(config.read_text()).get("model_type")
    except (OSError, ValueError) as exc:
        raise ConfigError(f"model.path ({where}): {config} is not valid JSON ({exc}); restore the "
                          "model's files") from None
    if cfg.trust_remote_code:
        return  # its own classes decide
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    if model_type not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        raise ConfigError(f"model.path ({where}) is a {model_type!r} model, which is not a "
                          "vision-language model that AutoModelForImageTextToText loads (a text-only "
                          "LLM?); point model.path at an image-text-to-text model such as LLaVA, "
                          "Idefics3 or Qwen2-VL (model.trust_remote_code=true for custom ones)")


def _load(kind: str, loader, cfg: ModelConfig, **kwargs):
    """from_pretrained with every failure as one line naming model.path (offline Hub ids,
    unreadable or corrupted files, a model without a vision-language head)."""
    where = _check_path(cfg)
    try:
        return loader.from_pretrained(where, trust_remote_code=cfg.trust_remote_code, **kwargs)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"model.path ({where}): its {kind} cannot be loaded: {first[:300]}; check "
                          "the folder's files (config.json, weights) or, for a Hub id, the network "
                          "or a cached copy (HF_HUB_OFFLINE=1)") from None


def load_processor(cfg: ModelConfig):
    from transformers import AutoProcessor

    preflight(cfg)
    return _load("processor", AutoProcessor, cfg)


def load_base_model(cfg: ModelConfig, dtype: torch.dtype = torch.float32):
    from transformers import AutoModelForImageTextToText

    return _load("model", AutoModelForImageTextToText, cfg, dtype=dtype)


def apply_lora(model, lora: LoraSettings, roles: ModuleRoles | None = None):
    """Freeze the base and add a LoRA adapter on the parts `lora.scope` names (the language model
    by default), with `modules_to_save` trained in full; returns the peft model. `roles`: the
    base model's module_roles, when the caller has them already."""
    from peft import LoraConfig, get_peft_model

    roles = roles or module_roles(model)
    targets = lora_targets(model, roles, list(lora.target_modules), list(lora.scope))
    saved = modules_to_save(model, roles, list(lora.modules_to_save))
    config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                        target_modules=targets, modules_to_save=saved or None, bias="none")
    try:
        return get_peft_model(model, config)
    except ValueError as exc:
        raise ConfigError(f"model.lora.target_modules / modules_to_save ({list(lora.target_modules)}"
                          f", {list(lora.modules_to_save)}) do not fit the model: {exc}") from None


def trainable_parameters(model) -> list[tuple[str, torch.nn.Parameter]]:
    """The adapter: trainable parameters in a fixed (registration) order, same on every rank."""
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def adapter_state(module, path: str) -> dict[str, torch.Tensor]:
    """The saved adapter at `path` (peft format) for the peft `module`, whose LoRA was built from
    model.lora, as the module's trainable parameter names -> the saved tensors in fp32, exactly
    as saved (nothing passes through the module, whose parameters may be bf16 or partitioned).
    Every adapter tensor must be found and fit, else one line naming model.adapter (a different
    rank is refused earlier, by ModelConfig.check)."""
    from peft.utils import get_peft_model_state_dict, load_peft_weights

    where = f"model.adapter ({path})"
    try:
        weights = load_peft_weights(path, device="cpu")
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{where}: its weights cannot be read ({str(exc).splitlines()[0][:200]})") from None
    params = trainable_parameters(module)
    # peft's own naming: each parameter's index goes through the saving code as its value
    markers = {n: torch.tensor([i]) for i, (n, _) in enumerate(params)}
    saved_as = {int(v): k for k, v in get_peft_model_state_dict(module, state_dict=markers,
                                                                save_embedding_layers=False).items()}
    unsaved = [n for i, (n, _) in enumerate(params) if i not in saved_as]
    if unsaved:
        raise RuntimeError(f"peft saves no tensor for the trainable parameter {unsaved[0]}")
    missing = sorted(k for k in saved_as.values() if k not in weights)
    if missing:
        raise ConfigError(f"{where} lacks {len(missing)} tensor(s) of the adapter model.lora builds "
                          f"(e.g. {missing[0]}); match model.lora.target_modules / scope / "
                          "modules_to_save to the run that saved it")
    unexpected = sorted(set(weights) - set(saved_as.values()))
    if unexpected:
        raise ConfigError(f"{where} holds {len(unexpected)} tensor(s) this adapter does not have "
                          f"(e.g. {unexpected[0]}); match model.lora.target_modules / scope / "
                          "modules_to_save to the run that saved it")
    state = {}
    for i, (n, p) in enumerate(params):
        value, shape = weights[saved_as[i]], tuple(getattr(p, "ds_shape", p.shape))
        if tuple(value.shape) != shape:
            raise ConfigError(f"{where} does not fit the adapter model.lora builds: {saved_as[i]} "
                              f"has shape {tuple(value.shape)}, the model's {shape}")
        state[n] = value.to(torch.float32)
    return state


def load_adapter(module, path: str) -> None:
    """Write the saved adapter at `path` into the peft `module`'s parameters (checked as in
    adapter_state); a run loads it through ClientEngine.write_adapter instead."""
    state = adapter_state(module, path)
    with torch.no_grad():
        for n, p in trainable_parameters(module):
            p.copy_(state[n].to(p.dtype))
