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

from hpc_fed.data.images import ImageCache
from hpc_fed.data.prompts import target, targets, user_text
from hpc_fed.data.records import Record
from hpc_fed.errors import DataFormatError
from hpc_fed.model.interfaces.base import ModelInterface

IGNORE_INDEX = -100


def user_message(record: Record, style: str = "modality", list_options: bool = False) -> list[dict]:
    """The user turn: image slot (if any), the sample's text (if any), then the question."""
    parts: list[dict] = []
    if record.image is not None:
        parts.append({"type": "image"})
    parts.append({"type": "text", "text": user_text(record, style, list_options)})
    return [{"role": "user", "content": parts}]


@lru_cache(maxsize=1)
def blank_image_path() -> str:
    """A black PNG in a per-process temporary folder (the image of an anchor row)."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="hpc_fed_")) / "blank.png"
    Image.new("RGB", (64, 64)).save(path)
    return str(path)


# processors whose token_type_ids mark the target suffix (1) rather than image tokens (Gemma-3)
_SUFFIX_TYPE_PROCESSORS = ("PaliGemmaProcessor",)


class Collator:
    """Builds padded batches for one processor (right padding, pad id from its tokenizer).

    `prompt_style` and `list_options` are data.prompt and data.list_options (see prompts.py);
    `image_cache_mb` is data.image_cache_mb (decoded images kept per process); `interface` is
    the model family's calling convention (hpc_fed/model/interfaces/, transformers' by default),
    which renders the prompts and runs the processor.
    """

    def __init__(self, processor, prompt_style: str = "modality", list_options: bool = False,
                 image_cache_mb: int = 256, *, interface: ModelInterface | None = None):
        self.processor = processor
        self.interface = interface or ModelInterface()
        self.images = ImageCache(image_cache_mb << 20)
        self.prompt_style, self.list_options = prompt_style, list_options
        self.tokenizer = processor.tokenizer
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._answer_cache: dict[str, list[int]] = {}
        # token-aligned keys' value on appended answer tokens (others: 0), see _extend
        suffix = 1 if type(processor).__name__ in _SUFFIX_TYPE_PROCESSORS else 0
        self._appended = {"attention_mask": 1, "token_type_ids": suffix}

    def _encode(self, records: Sequence[Record], padding_side: str = "right"):
        """The processor's batch of the records' prompts (chat template, images present)."""
        texts = [self.prompt_text(r) for r in records]
        # images per row (a list per record, empty without an image): the layout every
        # processor accepts, and the one Gemma-3's and Idefics3's require for mixed batches
        images = [[self.images.get(r.image, r.image_bytes)] if r.image is not None else []
                  for r in records]
        return self.interface.encode(self.processor, texts, images, padding_side=padding_side)

    def _prompts(self, records: Sequence[Record]) -> tuple[list[dict[str, list[int]]], dict]:
        """The processor's batch for the records, split in two: per record, its prompt's
        token-aligned values without padding (input_ids, attention_mask and whatever else the
        processor returns per token: token_type_ids, mm_token_type_ids, ...), and every other
        tensor as the processor laid it out for these rows (pixel_values, image_sizes,
        image_grid_thw, pixel_attention_mask, ...), passed to the model untouched."""
        enc = self._encode(records)
        ids, mask = enc["input_ids"], enc["attention_mask"].bool()
        aligned = [k for k, v in enc.items() if torch.is_tensor(v) and v.shape == ids.shape]
        rows = [{k: enc[k][i][mask[i]].tolist() for k in aligned} for i in range(len(records))]
        return rows, {k: v for k, v in enc.items() if k not in aligned}

    def prompt_text(self, record: Record) -> str:
        message = user_message(record, self.prompt_style, self.list_options)
        return self.interface.prompt_text(self.processor, message)

    def generation_batch(self, records: Sequence[Record]) -> dict[str, torch.Tensor]:
        """Prompts only, left-padded, for batched greedy decoding."""
        return dict(self._encode(list(records), padding_side="left"))

    def answer_ids(self, answer: str, eos: bool) -> list[int]:
        key = f"{answer}\x00{eos}"
        if key not in self._answer_cache:
            ids = self.tokenizer(answer, add_special_tokens=False)["input_ids"]
            if not ids:
                raise DataFormatError(f"answer {answer!r} tokenizes to nothing; check the dataset")
            self._answer_cache[key] = ids + ([self.tokenizer.eos_token_id] if eos else [])
        return self._answer_cache[key]

    def _pad(self, rows: list[dict[str, list[int]]], labels: list[list[int]]) -> dict[str, torch.Tensor]:
        """Right-pad every token-aligned key (pad id for input_ids, 0 for the others)."""
        width = max(len(r["input_ids"]) for r in rows)
        out = {}
        for key in rows[0]:
            fill = self.tokenizer.pad_token_id if key == "input_ids" else 0
            t = torch.full((len(rows), width), fill, dtype=torch.long)
            for i, r in enumerate(rows):
                t[i, : len(r[key])] = torch.tensor(r[key], dtype=torch.long)
            out[key] = t
        label_t = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        for i, lab in enumerate(labels):
            label_t[i, : len(lab)] = torch.tensor(lab, dtype=torch.long)
        out["labels"] = label_t
        return out

    def _extend(self, row: dict[str, list[int]], ids: list[int]) -> dict[str, list[int]]:
        """A prompt row continued by `ids` (answer tokens): attended (attention_mask 1), text
        (0) in any other token-aligned key, except PaliGemma's token_type_ids, where 1 marks the
        target suffix (its causal part; 0 would let answer tokens see each other)."""
        return {k: v + (ids if k == "input_ids" else [self._appended.get(k, 0)] * len(ids))
                for k, v in row.items()}

    def train_batch(self, records: Sequence[Record], image_anchor: bool = False) -> dict[str, torch.Tensor]:
        """Prompt + answer + eos; loss only on answer and eos.

        `image_anchor`: when no record has an image, add one row with a blank image and no label
        (it changes no loss or gradient). Ranks of a ZeRO group must run the same modules in the
        same order: a rank whose micro-batch has no image would otherwise skip the vision tower
        and projector, and their parameter gathers (ZeRO-3) and gradient reductions (ZeRO-2/3),
        while another rank runs them (a collective mismatch under missing/hybrid data).
        """
        records = list(records)  # read once (a RecordSet builds its records on each read)
        anchored = image_anchor and all(r.image is None for r in records)
        if anchored:
            records = [*records, dataclasses.replace(records[0], id="image-anchor",
                                                     image=blank_image_path(), image_bytes=None)]
        prompts, images = self._prompts(records)
        rows, labels = [], []
        for k, (prompt, r) in enumerate(zip(prompts, records)):
            ans = self.answer_ids(target(r, self.prompt_style), eos=True)
            rows.append(self._extend(prompt, ans))
            no_loss = anchored and k == len(records) - 1
            labels.append([IGNORE_INDEX] * (len(prompt["input_ids"]) + (len(ans) if no_loss else 0))
                          + ([] if no_loss else ans))
        return {**self._pad(rows, labels), **images}

    def score_batch(self, records: Sequence[Record]) -> tuple[dict[str, torch.Tensor], list]:
        """Rows that let every option of every record be scored by its log-likelihood.

        Option o = (t_0..t_k-1) after a prompt of length L is scored on the row
        prompt + t_0..t_k-2: logits at L+j-1 predict t_j. Options that share all but their
        last token share a row, so single-token options (the common case) cost one row per
        record. Returns the batch and, per record, per option, a list of (row, position,
        token) triples whose log-probabilities sum to the option's log-likelihood.
        """
        records = list(records)  # read once (a RecordSet builds its records on each read)
        prompts, images = self._prompts(records)
        rows: list[dict[str, list[int]]] = []
        row_owner: list[int] = []
        plans = []
        for i, (prompt, r) in enumerate(zip(prompts, records)):
            rows_of_prefix: dict[tuple[int, ...], int] = {}
            plan = []
            length = len(prompt["input_ids"])
            for option in targets(r, self.prompt_style):
                ans = self.answer_ids(option, eos=False)
                prefix = tuple(ans[:-1])
                if prefix not in rows_of_prefix:
                    rows_of_prefix[prefix] = len(rows)
                    rows.append(self._extend(prompt, list(prefix)))
                    row_owner.append(i)
                row = rows_of_prefix[prefix]
                plan.append([(row, length + j - 1, tok) for j, tok in enumerate(ans)])
            plans.append(plan)
        if row_owner != list(range(len(records))):
            # A record scored on several rows: the processor lays out its images once per row
            # (whatever its layout: one tensor per image, patches, a grid per image).
            images = self._prompts([records[i] for i in row_owner])[1]
        batch = self._pad(rows, [[] for _ in rows])
        del batch["labels"]
        return {**batch, **images}, plans
