"""Turn records into model batches with the model's own processor and chat template.

Training batches put the loss on the answer tokens only (prompt and padding are -100).
Scoring batches pair each record with each of its options, for option log-likelihoods.
Records without an image get a prompt without an image slot, and a mixed batch passes only
the images that are present.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import torch
from PIL import Image

from hpc_fed.data.prompts import render_question
from hpc_fed.data.records import Record
from hpc_fed.errors import DataFormatError

IGNORE_INDEX = -100


def user_message(record: Record, style: str = "modality", list_options: bool = False) -> list[dict]:
    """The user turn: image slot (if any), the sample's text (if any), then the question."""
    parts: list[dict] = []
    if record.image is not None:
        parts.append({"type": "image"})
    question = render_question(record, style, list_options)
    prompt = question if record.text is None else f"{record.text}\n{question}"
    parts.append({"type": "text", "text": prompt})
    return [{"role": "user", "content": parts}]


@lru_cache(maxsize=8192)
def load_image(path: str) -> Image.Image:
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (OSError, ValueError) as exc:
        raise DataFormatError(f"image {path} cannot be read ({exc}); fix or remove the file") from None


@lru_cache(maxsize=1)
def blank_image_path() -> str:
    """A black PNG in a per-process temporary folder (the image of an anchor row)."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="hpc_fed_")) / "blank.png"
    Image.new("RGB", (64, 64)).save(path)
    return str(path)


class Collator:
    """Builds padded batches for one processor (right padding, pad id from its tokenizer).

    `prompt_style` and `list_options` are data.prompt and data.list_options (see prompts.py).
    """

    def __init__(self, processor, prompt_style: str = "modality", list_options: bool = False):
        self.processor = processor
        self.prompt_style, self.list_options = prompt_style, list_options
        self.tokenizer = processor.tokenizer
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._answer_cache: dict[str, list[int]] = {}

    def _encode(self, records: Sequence[Record], padding_side: str = "right"):
        """The processor's batch of the records' prompts (chat template, images present)."""
        texts = [self.prompt_text(r) for r in records]
        images = [load_image(r.image) for r in records if r.image is not None]
        side, self.tokenizer.padding_side = self.tokenizer.padding_side, padding_side
        try:
            return self.processor(text=texts, images=images or None, return_tensors="pt", padding=True)
        finally:
            self.tokenizer.padding_side = side

    def _prompts(self, records: Sequence[Record]) -> tuple[list[list[int]], torch.Tensor | None]:
        enc = self._encode(records)
        ids = [row[mask.bool()].tolist() for row, mask in zip(enc["input_ids"], enc["attention_mask"])]
        return ids, enc.get("pixel_values")

    def prompt_text(self, record: Record) -> str:
        message = user_message(record, self.prompt_style, self.list_options)
        return self.processor.apply_chat_template(message, add_generation_prompt=True, tokenize=False)

    def generation_batch(self, records: Sequence[Record]) -> dict[str, torch.Tensor]:
        """Prompts only, left-padded, for batched greedy decoding."""
        return dict(self._encode(records, padding_side="left"))

    def answer_ids(self, answer: str, eos: bool) -> list[int]:
        key = f"{answer}\x00{eos}"
        if key not in self._answer_cache:
            ids = self.tokenizer(answer, add_special_tokens=False)["input_ids"]
            if not ids:
                raise DataFormatError(f"answer {answer!r} tokenizes to nothing; check the dataset")
            self._answer_cache[key] = ids + ([self.tokenizer.eos_token_id] if eos else [])
        return self._answer_cache[key]

    def _pad(self, seqs: list[list[int]], labels: list[list[int]]) -> dict[str, torch.Tensor]:
        width = max(len(s) for s in seqs)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        label_t = torch.full((len(seqs), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, (s, lab) in enumerate(zip(seqs, labels)):
            input_ids[i, : len(s)] = torch.tensor(s)
            label_t[i, : len(lab)] = torch.tensor(lab)
            mask[i, : len(s)] = 1
        return {"input_ids": input_ids, "attention_mask": mask, "labels": label_t}

    def train_batch(self, records: Sequence[Record], image_anchor: bool = False) -> dict[str, torch.Tensor]:
        """Prompt + answer + eos; loss only on answer and eos.

        `image_anchor`: when no record has an image, add one row with a blank image and no label
        (it changes no loss or gradient). Ranks of a ZeRO group must run the same modules in the
        same order: a rank whose micro-batch has no image would otherwise skip the vision tower
        and projector, and their parameter gathers (ZeRO-3) and gradient reductions (ZeRO-2/3),
        while another rank runs them (a collective mismatch under missing/hybrid data).
        """
        anchored = image_anchor and all(r.image is None for r in records)
        if anchored:
            records = [*records, dataclasses.replace(records[0], id="image-anchor",
                                                     image=blank_image_path())]
        prompts, pixels = self._prompts(records)
        seqs, labels = [], []
        for k, (prompt, r) in enumerate(zip(prompts, records)):
            ans = self.answer_ids(r.answer, eos=True)
            seqs.append(prompt + ans)
            no_loss = anchored and k == len(records) - 1
            labels.append([IGNORE_INDEX] * (len(prompt) + (len(ans) if no_loss else 0))
                          + ([] if no_loss else ans))
        batch = self._pad(seqs, labels)
        if pixels is not None:
            batch["pixel_values"] = pixels
        return batch

    def score_batch(self, records: Sequence[Record]) -> tuple[dict[str, torch.Tensor], list]:
        """Rows that let every option of every record be scored by its log-likelihood.

        Option o = (t_0..t_k-1) after a prompt of length L is scored on the row
        prompt + t_0..t_k-2: logits at L+j-1 predict t_j. Options that share all but their
        last token share a row, so single-token options (the common case) cost one row per
        record. Returns the batch and, per record, per option, a list of (row, position,
        token) triples whose log-probabilities sum to the option's log-likelihood.
        """
        prompts, pixels = self._prompts(records)
        seqs: list[list[int]] = []
        row_owner: list[int] = []
        plans = []
        for i, (prompt, r) in enumerate(zip(prompts, records)):
            rows_of_prefix: dict[tuple[int, ...], int] = {}
            plan = []
            for option in r.options:
                ans = self.answer_ids(option, eos=False)
                prefix = tuple(ans[:-1])
                if prefix not in rows_of_prefix:
                    rows_of_prefix[prefix] = len(seqs)
                    seqs.append(prompt + list(prefix))
                    row_owner.append(i)
                row = rows_of_prefix[prefix]
                plan.append([(row, len(prompt) + j - 1, tok) for j, tok in enumerate(ans)])
            plans.append(plan)
        batch = self._pad(seqs, [[] for _ in seqs])
        del batch["labels"]
        if pixels is not None:  # pixel rows follow the records that have an image
            image_row = {i: k for k, i in enumerate(i for i, r in enumerate(records)
                                                          if r.image is not None)}
            batch["pixel_values"] = pixels[[image_row[i] for i in row_owner if i in image_row]]
        return batch, plans
