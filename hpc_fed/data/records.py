"""The one record type every dataset loads into."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from hpc_fed.errors import DataFormatError


@dataclass(frozen=True)
class Record:
    """One supervised example.

    id: unique within its dataset; question: the instruction asked about the sample (the
    prompt adds a modality phrase and, where shown, the option list); answer: the target;
    options: the closed set the answer is one of (classification; scored by option
    log-likelihood), or empty for an open-ended answer (scored by generation + exact match);
    image: path to an image file, or None when the sample has no image; text: the sample's own
    text modality (a meme caption, a tweet, a claim), or None; answer_type: OPEN / CLOSED for
    VQA datasets that publish it (reported separately), else None.
    """

    id: str
    question: str
    answer: str
    options: tuple[str, ...] = ()
    image: Optional[str] = None
    text: Optional[str] = None
    answer_type: Optional[str] = None

    def __post_init__(self):
        if self.options and self.answer not in self.options:
            raise DataFormatError(
                f"record {self.id!r}: answer {self.answer!r} is not among its options "
                f"{list(self.options)}; fix the loader's option list")
        if not self.answer:
            raise DataFormatError(f"record {self.id!r}: empty answer; drop or fix the record")

    @property
    def label(self) -> int:
        """Index of the answer among the options (classification records only)."""
        if not self.options:
            raise DataFormatError(f"record {self.id!r} is open-ended (no options): it has no "
                                  "class label; evaluate it with eval.mode=generation")
        return self.options.index(self.answer)


def subsample(records: list[Record], limit: int | None, seed: int) -> list[Record]:
    """A seeded subset of `limit` records, kept in their original order."""
    if limit is None or limit >= len(records):
        return records
    keep = np.sort(np.random.default_rng(seed).choice(len(records), size=limit, replace=False))
    return [records[i] for i in keep]
