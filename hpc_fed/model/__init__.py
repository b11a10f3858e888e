"""Models: loading an image-text-to-text model (or one with its own code, called through its
family's interface) from a folder or the Hub with a LoRA adapter. The offline tiny model is
built by hpc_fed/tiny/."""

from hpc_fed.model.loading import apply_lora, load_base_model, load_processor

__all__ = ["apply_lora", "load_base_model", "load_processor"]
