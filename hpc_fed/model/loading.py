"""Load a Hugging Face image-text-to-text model and processor, and wrap it with LoRA.

The same Auto-class path serves the local tiny model and real models (local path or hub name).
`trust_remote_code` stays off unless `model.trust_remote_code=true`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from hpc_fed.model.config import LoraSettings, ModelConfig
from hpc_fed.errors import ConfigError


def _check_path(cfg: ModelConfig) -> None:
    p = Path(cfg.path)
    looks_local = p.is_absolute() or cfg.path.startswith((".", "~")) or p.exists() \
        or len(Path(cfg.path).parts) > 2
    if looks_local and not (p / "config.json").is_file():
        raise ConfigError(f"model.path ({cfg.path}) holds no config.json; build the tiny model "
                          f"with `hpc-fed make-tiny-model {cfg.path}` or point model.path at a "
                          "saved model")


def load_processor(cfg: ModelConfig):
    from transformers import AutoProcessor

    _check_path(cfg)
    return AutoProcessor.from_pretrained(cfg.path, trust_remote_code=cfg.trust_remote_code)


def load_base_model(cfg: ModelConfig, dtype: torch.dtype = torch.float32):
    from transformers import AutoModelForImageTextToText

    _check_path(cfg)
    return AutoModelForImageTextToText.from_pretrained(
        cfg.path, trust_remote_code=cfg.trust_remote_code, dtype=dtype)


def lora_target_regex(lora: LoraSettings) -> str:
    """LoRA on the named projections of the language model only (not the vision tower)."""
    names = "|".join(sorted(set(lora.target_modules)))
    return rf"^(?!.*vision_tower).*\.({names})$"


def apply_lora(model, lora: LoraSettings):
    """Freeze the base and add a LoRA adapter; returns the peft model."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                        target_modules=lora_target_regex(lora),
                        modules_to_save=list(lora.modules_to_save) or None, bias="none")
    try:
        return get_peft_model(model, config)
    except ValueError as exc:
        raise ConfigError(f"model.lora.target_modules / modules_to_save ({list(lora.target_modules)}"
                          f", {list(lora.modules_to_save)}) do not fit the model: {exc}") from None


def trainable_parameters(model) -> list[tuple[str, torch.nn.Parameter]]:
    """The adapter: trainable parameters in a fixed (registration) order, same on every rank."""
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]
