"""Which part of a vision-language model is which: the language model, the vision encoder, the
projector between them. LoRA targets and `modules_to_save` are resolved against these roles, so
the same config adapts LLaVA, LLaVA-NeXT / OneVision, Idefics3 / SmolVLM, Qwen2-VL / Qwen2.5-VL
and PaliGemma alike, and a name that matches nothing stops the run instead of training less than
the config says.

Roles are found by transformers' own module names for each architecture:

    language   language_model (LLaVA family, Qwen2-VL, PaliGemma) | text_model (Idefics3)
    vision     vision_tower (LLaVA family, PaliGemma) | vision_model (Idefics3) | visual (Qwen2-VL)
    projector  multi_modal_projector (LLaVA family, PaliGemma) | connector (Idefics3) |
               merger (Qwen2-VL, inside `visual`)
    MiniCPM-V (trust_remote_code, the FedMLLM paper's model): llm, vpm, resampler

The shallowest module with one of those names takes the role. A model where the language model
or the vision encoder cannot be found is refused with the names it does have.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hpc_fed.errors import ConfigError
from hpc_fed.model.config import SAVE_ROLES

ROLE_NAMES = {
    "language": ("language_model", "text_model", "llm"),
    "vision": ("vision_tower", "vision_model", "visual", "vpm"),
    "projector": ("multi_modal_projector", "connector", "merger", "mm_projector", "resampler"),
}  # llm / vpm / resampler: MiniCPM-V (trust_remote_code; hpc_fed/model/interfaces/minicpmv.py)


@dataclass(frozen=True)
class ModuleRoles:
    language: str  # qualified module names, e.g. model.language_model
    vision: str
    projector: str | None  # None: the architecture has no separate projector

    def prefix(self, role: str) -> str | None:
        return getattr(self, role)


def _depth(name: str) -> int:
    return name.count(".")


def module_roles(model: torch.nn.Module) -> ModuleRoles:
    """The roles of a (not yet peft-wrapped) vision-language model's modules."""
    found: dict[str, str] = {}
    for name, _ in model.named_modules():
        last = name.rsplit(".", 1)[-1]
        for role, names in ROLE_NAMES.items():
            if last in names and (role not in found or _depth(name) < _depth(found[role])):
                found[role] = name
    missing = [r for r in ("language", "vision") if r not in found]
    if missing:
        top = [n for n, _ in model.named_modules() if n and _depth(n) <= 1]
        raise ConfigError(f"{type(model).__name__}: cannot tell its {' and '.join(missing)} part(s) "
                          f"(looked for modules named {[n for r in missing for n in ROLE_NAMES[r]]}; "
                          f"it has {top}); this architecture is not supported yet")
    return ModuleRoles(found["language"], found["vision"], found.get("projector"))


def _under(name: str, prefix: str | None) -> bool:
    return prefix is not None and (name == prefix or name.startswith(prefix + "."))


def lora_targets(model: torch.nn.Module, roles: ModuleRoles, target_modules: list[str],
                 scope: list[str]) -> list[str]:
    """Qualified names of the linear layers that get LoRA: those named in `target_modules`
    inside the roles of `scope`, never inside the projector (it is trained in full through
    modules_to_save when asked). A target that matches nothing is an error naming candidates."""
    linear = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    in_scope = [n for n in linear if any(_under(n, roles.prefix(r)) for r in scope)
                and not _under(n, roles.projector)]
    chosen = [n for n in in_scope if n.rsplit(".", 1)[-1] in set(target_modules)]
    for target in target_modules:
        if not any(n.rsplit(".", 1)[-1] == target for n in chosen):
            candidates = sorted({n.rsplit(".", 1)[-1] for n in in_scope})
            raise ConfigError(f"model.lora.target_modules: {target!r} matches no linear layer of the "
                              f"{' and '.join(scope)} part(s) of {type(model).__name__}; its "
                              f"candidates are {candidates}")
    return chosen


def modules_to_save(model: torch.nn.Module, roles: ModuleRoles, entries: list[str]) -> list[str]:
    """Qualified names for model.lora.modules_to_save: a role (projector, vision) or a module
    name; an entry that matches no module is an error naming the model's candidates."""
    names = [n for n, _ in model.named_modules() if n]
    out = []
    for entry in entries:
        if entry in SAVE_ROLES:
            prefix = roles.prefix(entry)
            if prefix is None:
                raise ConfigError(f"model.lora.modules_to_save: {type(model).__name__} has no separate "
                                  f"{entry} module; remove {entry!r}")
            out.append(prefix)
            continue
        matches = [n for n in names if n == entry or n.endswith("." + entry)]
        if not matches:
            children = sorted({n.rsplit(".", 1)[-1] for n in names if _depth(n) <= 2})
            raise ConfigError(f"model.lora.modules_to_save: {entry!r} matches no module of "
                              f"{type(model).__name__}; use a role ({', '.join(SAVE_ROLES)}) or one of "
                              f"{children}")
        out.extend(m for m in matches if not any(_under(m, o) for o in out))
    return out
