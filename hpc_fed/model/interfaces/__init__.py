"""Model families' calling conventions: transformers' image-text-to-text one (base.py) and the
remote-code families that differ, one module each, chosen by the model's `model_type`."""

from __future__ import annotations

from hpc_fed.model.interfaces.base import ModelInterface, to_device
from hpc_fed.model.interfaces.minicpmv import MiniCPMVInterface

FAMILIES: dict[str, type[ModelInterface]] = {"minicpmv": MiniCPMVInterface}

__all__ = ["FAMILIES", "ModelInterface", "interface_for", "to_device"]


def interface_for(model_type: str | None) -> ModelInterface:
    """The calling convention of a model whose config.json says `model_type`."""
    return FAMILIES.get(model_type or "", ModelInterface)()
