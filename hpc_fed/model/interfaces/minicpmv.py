"""MiniCPM-V (openbmb/MiniCPM-V-2_6, the FedMLLM paper's model; remote code, model_type
"minicpmv"): its own calling convention, adapted here and nowhere else.

  prompt    MiniCPM-V's chat(): a turn's content is one string, an image written as
            "(<image>./</image>)" on its own line, rendered by the tokenizer's chat template.
  batch     its processor takes `images` as a list per text (never None), expands each tag into
            the image's placeholder tokens and returns pixel_values / tgt_sizes as nested lists
            (images of various sizes) and `image_bound`, the [start, end) of each image's
            placeholder; it pads on the left with id 0 (a real token of its vocabulary) and masks
            `ids != 0`, so rows are encoded one by one and padded here with the tokenizer's pad
            id, the bounds moved with the row.
  forward   `model(data={input_ids, pixel_values, tgt_sizes, image_bound, position_ids}, **kwargs)`
            returns the language model's logits and no loss (MiniCPM-V's own trainer computes it
            from the logits), so the loss is computed here as transformers' causal-LM loss
            (shifted labels, mean over the labelled tokens).
  generate  `model.generate(input_ids, pixel_values, tgt_sizes, image_bound, attention_mask,
            tokenizer, ...)` returns the new tokens only, with its own terminators; rows that end
            early continue with id 0, cut here at the first terminator.
Its modules llm / vpm / resampler are the language / vision / projector roles (model/roles.py).
"""

from __future__ import annotations

import torch

from hpc_fed.model.interfaces.base import ModelInterface

IMAGE_TAG = "(<image>./</image>)"
IMAGE_KEYS = ("pixel_values", "tgt_sizes", "image_bound")


def positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids counting the attended tokens of each row (0 on padding)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


class MiniCPMVInterface(ModelInterface):
    name = "minicpmv"

    def prompt_text(self, processor, message: list[dict]) -> str:
        turns = [{"role": m["role"], "content": m["content"] if isinstance(m["content"], str) else
                  "\n".join(IMAGE_TAG if part["type"] == "image" else part["text"] for part in m["content"])}
                 for m in message]
        return processor.tokenizer.apply_chat_template(turns, add_generation_prompt=True, tokenize=False)

    def encode(self, processor, texts: list[str], images: list[list], *,
               padding_side: str = "right") -> dict:
        rows = [processor([text], [row_images], return_tensors="pt")
                for text, row_images in zip(texts, images)]
        width = max(r["input_ids"].shape[1] for r in rows)
        ids = torch.full((len(rows), width), processor.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        bounds = []
        for i, r in enumerate(rows):
            n = r["input_ids"].shape[1]
            start = width - n if padding_side == "left" else 0
            ids[i, start:start + n] = r["input_ids"][0]
            mask[i, start:start + n] = 1
            bounds.append(torch.as_tensor(r["image_bound"][0], dtype=torch.long).reshape(-1, 2) + start)
        return {"input_ids": ids, "attention_mask": mask, "image_bound": bounds,
                "pixel_values": [r["pixel_values"][0] for r in rows],
                "tgt_sizes": [r["tgt_sizes"][0] for r in rows]}

    def forward(self, model, batch: dict):
        from transformers.loss.loss_utils import ForCausalLMLoss

        mask = batch["attention_mask"]
        data = {"input_ids": batch["input_ids"], "position_ids": positions(mask),
                **{k: batch[k] for k in IMAGE_KEYS}}
        out = model(data=data, attention_mask=mask, use_cache=False)
        if batch.get("labels") is not None:
            out.loss = ForCausalLMLoss(out.logits, batch["labels"], vocab_size=out.logits.shape[-1])
        return out

    def generate(self, model, batch: dict, *, tokenizer, max_new_tokens: int,
                 synced: bool = False) -> torch.Tensor:
        out = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                             **{k: batch[k] for k in IMAGE_KEYS}, tokenizer=tokenizer,
                             max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                             synced_gpus=synced)
        names = getattr(model, "terminators", None) or [tokenizer.eos_token]
        ended = torch.isin(out, torch.tensor(tokenizer.convert_tokens_to_ids(list(names)), device=out.device))
        after = ended.long().cumsum(-1) > 0
        return out.masked_fill(after, tokenizer.pad_token_id)
