"""Models: loading any image-text-to-text model with a LoRA adapter, and the offline tiny model."""

from hpc_fed.model.loading import apply_lora, load_base_model, load_processor

__all__ = ["apply_lora", "load_base_model", "load_processor"]
