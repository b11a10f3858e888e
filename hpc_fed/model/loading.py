"""Load a Hugging Face vision-language model and processor, and wrap it with LoRA.

The same path serves the local tiny model and real models (a folder or a Hub id, at
model.revision). The model class comes from the model's own config.json: AutoModelForImageTextToText
for an architecture transformers registers there; for a model with its own code
(model.trust_remote_code=true) the Auto class its `auto_map` declares (MiniCPM-V registers
AutoModel). Its calling convention (hpc_fed/model/interfaces/) follows its `model_type`.
`trust_remote_code` stays off unless `model.trust_remote_code=true`; a Hub id's code runs only
at a pinned commit (hpc_fed/model/hub.py).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import torch

from hpc_fed.errors import ConfigError
from hpc_fed.model.hub import check_remote_code, is_hub_id, loadable
from hpc_fed.model.config import TINY, LoraSettings, ModelConfig
from hpc_fed.model.interfaces import ModelInterface, interface_for
from hpc_fed.model.roles import ModuleRoles, lora_targets, module_roles, modules_to_save

# Auto classes a remote-code model may register in its auto_map, most specific first
REMOTE_AUTO_CLASSES = ("AutoModelForImageTextToText", "AutoModelForVision2Seq", "AutoModelForCausalLM",
                       "AutoModel")


def _check_path(cfg: ModelConfig) -> str:
    """The folder or Hub id to load; a ConfigError naming model.path when it cannot be one."""
    where = cfg.location
    p = Path(where)
    if not is_hub_id(where) and not (p / "config.json").is_file():
        what = "does not exist" if not p.exists() else "holds no config.json"
        raise ConfigError(f"model.path ({where}) {what}; point model.path at a saved model folder or "
                          "a Hub id, or use model.path=tiny for the offline tiny model (`hpc-fed "
                          "make-tiny-model DIR` builds one)")
    return where


def _where(cfg: ModelConfig) -> tuple[str, dict]:
    """What from_pretrained loads (model.path, or the cached snapshot of a Hub id out of reach)
    and its common arguments: remote code only when asked for (and pinned), the revision."""
    where = _check_path(cfg)
    check_remote_code(where, cfg.trust_remote_code, cfg.revision, cfg.allow_unpinned_remote_code)
    location = loadable(where, cfg.revision)
    kwargs = {"trust_remote_code": cfg.trust_remote_code}
    if cfg.revision and location == where and is_hub_id(where):
        kwargs["revision"] = cfg.revision
    return location, kwargs


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


@lru_cache(maxsize=8)
def _hub_config(repo_id: str, revision: str | None) -> dict:
    from transformers import PretrainedConfig

    return PretrainedConfig.get_config_dict(repo_id, revision=revision)[0]


def model_config(cfg: ModelConfig) -> dict:
    """The model's config.json as a dict (model_type, architectures, auto_map), read without
    running any of its code."""
    where, kwargs = _where(cfg)
    local = Path(where) / "config.json"
    try:
        if local.is_file():
            return json.loads(local.read_text())
        return _hub_config(where, kwargs.get("revision"))
    except (OSError, ValueError) as exc:
        what = f"{local} is not valid JSON" if local.is_file() else "its config.json cannot be read"
        raise ConfigError(f"model.path ({cfg.location}): {what} ({_first_line(exc)}); restore the "
                          "model's files") from None


def auto_class(cfg: ModelConfig, config: dict):
    """The Auto class that loads the model: AutoModelForImageTextToText when transformers
    registers its model_type there, else (with model.trust_remote_code=true) the most specific
    one its auto_map declares."""
    import transformers
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    model_type, declared = config.get("model_type"), config.get("auto_map") or {}
    if model_type in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        return transformers.AutoModelForImageTextToText
    remote = [name for name in REMOTE_AUTO_CLASSES if name in declared and hasattr(transformers, name)]
    if remote and cfg.trust_remote_code:
        return getattr(transformers, remote[0])
    if remote:
        raise ConfigError(f"model.path ({cfg.location}) is a {model_type!r} model whose classes are its "
                          f"own code (auto_map: {', '.join(remote)}); set model.trust_remote_code=true "
                          "(with model.revision=<commit> for a Hub id) to run it")
    raise ConfigError(f"model.path ({cfg.location}) is a {model_type!r} model, which is not a "
                      "vision-language model that AutoModelForImageTextToText loads (a text-only "
                      "LLM?); point model.path at an image-text-to-text model such as LLaVA, "
                      "Idefics3 or Qwen2-VL, or a model with its own code that registers an Auto "
                      "class in its config.json (model.trust_remote_code=true)")


def preflight(cfg: ModelConfig) -> None:
    """Before any process starts: the model can load here (a folder with a readable config.json,
    a Hub id cached or reachable, remote code pinned) and is a vision-language architecture
    (the tiny model is built later)."""
    if cfg.path == TINY:
        return
    auto_class(cfg, model_config(cfg))


def load_interface(cfg: ModelConfig) -> ModelInterface:
    """The model family's calling convention (hpc_fed/model/interfaces/), by its model_type."""
    if cfg.path == TINY:
        return interface_for(None)
    return interface_for(model_config(cfg).get("model_type"))


def _load(kind: str, loader, cfg: ModelConfig, **kwargs):
    """from_pretrained with every failure as one line naming model.path (offline Hub ids,
    unreadable or corrupted files, a model without a vision-language head)."""
    where, common = _where(cfg)
    try:
        return loader.from_pretrained(where, **common, **kwargs)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"model.path ({cfg.location}): its {kind} cannot be loaded: {_first_line(exc)}; "
                          "check the folder's files (config.json, weights) or, for a Hub id, the "
                          "network or a cached copy (`hpc-fed download`, HF_HUB_OFFLINE=1)") from None


def load_processor(cfg: ModelConfig):
    from transformers import AutoProcessor

    preflight(cfg)
    return _load("processor", AutoProcessor, cfg)


def load_base_model(cfg: ModelConfig, dtype: torch.dtype = torch.float32):
    return _load("model", auto_class(cfg, model_config(cfg)), cfg, dtype=dtype)


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
