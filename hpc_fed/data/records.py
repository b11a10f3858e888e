"""The one record type every dataset loads into."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from hpc_fed.errors import DataFormatError


@dataclass(frozen=True)
class Record:
    """One supervised example.

    id: unique within its dataset; image: path to an image file, or None when the sample has
    no image; text: the sample's own text modality (a meme caption, a tweet), or None;
    question: the instruction asked about them; answer: the target, one of `options`.
    """

    id: str
    question: str
    answer: str
    options: tuple[str, ...]
    image: Optional[str] = None
    text: Optional[str] = None

    def __post_init__(self):
        if self.answer not in self.options:
            raise DataFormatError(
                f"record {self.id!r}: answer {self.answer!r} is not among its options "
                f"{list(self.options)}; fix the loader's option list")

    @property
    def label(self) -> int:
        return self.options.index(self.answer)
