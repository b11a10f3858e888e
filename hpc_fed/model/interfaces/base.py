"""How hpc_fed calls a model: the processor's batch for a list of prompts, the forward pass that
gives the loss and the logits, and greedy decoding.

`ModelInterface` is transformers' image-text-to-text convention, which LLaVA (and -NeXT,
-OneVision), Idefics3 / SmolVLM, Qwen2-VL, PaliGemma and Gemma-3 follow: the processor takes the
texts and a list of images per row, the model takes the processor's keys as keyword arguments,
computes the loss from `labels`, and `generate` returns the prompt followed by the new tokens. A
family with another calling convention (remote code such as MiniCPM-V's) overrides these
methods in its own module of this package; nothing else in hpc_fed knows the difference.
"""

from __future__ import annotations

import torch


class ModelInterface:
    """transformers' image-text-to-text calling convention."""

    name = "transformers"

    def prompt_text(self, processor, message: list[dict]) -> str:
        """The prompt of a user turn (`message`: chat messages whose content is a string or a
        list of {"type": "image"} / {"type": "text", "text": ...} parts), generation prompt
        included."""
        return processor.apply_chat_template(message, add_generation_prompt=True, tokenize=False)

    def encode(self, processor, texts: list[str], images: list[list], *,
               padding_side: str = "right") -> dict:
        """The processor's batch of `texts`, padded on `padding_side`; `images` holds a list of
        images per row (empty without one). Tensors whose shape is input_ids' are token-aligned
        (the collator pads and extends them); everything else goes to the model as it is."""
        tokenizer = processor.tokenizer
        side, tokenizer.padding_side = tokenizer.padding_side, padding_side
        try:
            return dict(processor(text=texts, images=images if any(images) else None,
                                  return_tensors="pt", padding=True))
        finally:
            tokenizer.padding_side = side

    def forward(self, model, batch: dict):
        """The model's output for a collated batch: `.logits`, and `.loss` when the batch holds
        `labels` (mean cross-entropy of the labelled tokens, each predicted from the tokens
        before it)."""
        return model(**batch)

    def generate(self, model, batch: dict, *, tokenizer, max_new_tokens: int,
                 synced: bool = False) -> torch.Tensor:
        """Greedy decoding of a left-padded prompt batch: the new tokens only, one row each.
        `synced`: ranks keep stepping until all finish (ZeRO-3 gathers parameters collectively)."""
        out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                             synced_gpus=synced, pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=tokenizer.eos_token_id)
        return out[:, batch["input_ids"].shape[1]:]


def to_device(value, device: torch.device, float_dtype: torch.dtype):
    """A batch (tensors, possibly in nested lists / dicts, as some processors lay out images of
    various sizes) on `device`, floating-point tensors in `float_dtype`."""
    if torch.is_tensor(value):
        value = value.to(device, non_blocking=True)
        return value.to(float_dtype) if value.is_floating_point() else value
    if isinstance(value, dict):
        return {k: to_device(v, device, float_dtype) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(v, device, float_dtype) for v in value)
    return value
