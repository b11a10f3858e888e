"""The one record type every dataset loads into, and the table that holds a split of them.

A split lives in a Hugging Face `datasets.Dataset` with the `Record` fields as columns (Arrow:
memory-mapped where it comes from files, a few bytes a sample where it is built here). Images
stay lazy: a path, or the encoded bytes of an embedded image (parquet copies of Hub datasets),
decoded when a batch is built. `RecordSet` is the view the rest of hpc_fed reads: rows of that
table selected by index (client partitions, subsets, skipped samples) and per-row modality masks
(the scenarios, the test views). Selecting or masking copies no record; a `Record` is built
when a row is read.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional, Union

import numpy as np

from hpc_fed.errors import DataFormatError

if TYPE_CHECKING:
    from datasets import Dataset


@dataclass(frozen=True)
class Record:
    """One supervised example.

    id: unique within its dataset; question: the instruction asked about the sample (the
    prompt adds a modality phrase and, where shown, the option list); answer: the target;
    options: the closed set the answer is one of (classification; scored by option
    log-likelihood), or empty for an open-ended answer (scored by generation + exact match);
    image: path to an image file, or None when the sample has no image (for an embedded image,
    a name unique to its bytes: "<file>@<digest>"); text: the sample's own text modality (a meme
    caption, a tweet, a claim), or None; answer_type: OPEN / CLOSED for VQA datasets that publish
    it (reported separately), else None; image_bytes: the encoded image (PNG, JPEG, ...) when it
    is embedded in the dataset's files rather than a file of its own, else None.
    """

    id: str
    question: str
    answer: str
    options: tuple[str, ...] = ()
    image: Optional[str] = None
    text: Optional[str] = None
    answer_type: Optional[str] = None
    image_bytes: Optional[bytes] = field(default=None, repr=False, compare=False)

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


COLUMNS = ("id", "question", "answer", "options", "image", "text", "answer_type", "image_bytes")


def features():
    """The `datasets.Features` of a record table (one column per Record field)."""
    from datasets import Features, List, Value

    return Features({"id": Value("string"), "question": Value("string"), "answer": Value("string"),
                     "options": List(Value("string")), "image": Value("string"),
                     "text": Value("string"), "answer_type": Value("string"),
                     "image_bytes": Value("binary")})


def _record(row: dict) -> Record:
    return Record(id=row["id"], question=row["question"], answer=row["answer"],
                  options=tuple(row["options"] or ()), image=row["image"], text=row["text"],
                  answer_type=row["answer_type"], image_bytes=row["image_bytes"])


class RecordSet(Sequence):
    """Records read from a `datasets.Dataset` with the Record columns (`features()`).

    `rows`: which rows of the table, in order (default: all); `keep_image` / `keep_text`: per
    selected row, whether its image / text is kept (default: all kept; a scenario or a test
    view clears them). `select`, `with_modalities` and slicing return new views of the same
    table; indexing builds the Record (about 10 us a row through Arrow, batched when iterated).
    """

    CHUNK = 1024  # rows fetched from Arrow at a time when iterating

    def __init__(self, dataset: "Dataset", rows=None, keep_image=None, keep_text=None):
        if getattr(dataset, "_indices", None) is not None:
            dataset = dataset.flatten_indices()  # a selection made by datasets: make it the table
        missing = [c for c in COLUMNS if c not in dataset.column_names]
        if missing:
            raise TypeError(f"a RecordSet needs the columns {COLUMNS}; missing {missing}")
        self.dataset = dataset
        n = len(dataset) if rows is None else len(rows)
        self.rows = np.arange(len(dataset), dtype=np.int64) if rows is None else np.asarray(rows, np.int64)
        self.keep_image = np.ones(n, bool) if keep_image is None else np.asarray(keep_image, bool)
        self.keep_text = np.ones(n, bool) if keep_text is None else np.asarray(keep_text, bool)
        if self.rows.ndim != 1 or len(self.keep_image) != n or len(self.keep_text) != n:
            raise ValueError("rows, keep_image and keep_text must be 1-d and of one length")

    # --- building ---------------------------------------------------------------------
    @classmethod
    def from_records(cls, records: Sequence[Record]) -> "RecordSet":
        """A table holding these records (in memory: Arrow buffers, not Python objects)."""
        if isinstance(records, RecordSet):
            return records
        import pyarrow as pa
        from datasets import Dataset

        records = list(records)  # read once (a generator would give ragged columns)
        data = {c: [getattr(r, c) for r in records] for c in COLUMNS}
        data["options"] = [list(o) for o in data["options"]]
        feats = features()  # built with pyarrow: 20x faster than Dataset.from_dict here
        return cls(Dataset(pa.table(data, schema=feats.arrow_schema)))

    @classmethod
    def concat(cls, parts: Sequence["RecordSet"]) -> "RecordSet":
        """The records of `parts`, one after the other (their selections and masks kept)."""
        from datasets import concatenate_datasets

        parts = [cls.from_records(p) for p in parts]
        offsets = np.cumsum([0] + [len(p.dataset) for p in parts[:-1]])
        return cls(concatenate_datasets([p.dataset for p in parts]),
                   np.concatenate([p.rows + o for p, o in zip(parts, offsets)]),
                   np.concatenate([p.keep_image for p in parts]),
                   np.concatenate([p.keep_text for p in parts]))

    # --- views ------------------------------------------------------------------------
    def select(self, indices) -> "RecordSet":
        """The records at `indices` (positions in this set), in that order."""
        idx = np.asarray(indices)
        if idx.dtype == bool:
            raise TypeError("RecordSet.select takes positions, not a boolean mask: use np.flatnonzero(mask)")
        idx = idx.astype(np.int64).reshape(-1)
        return RecordSet(self.dataset, self.rows[idx], self.keep_image[idx], self.keep_text[idx])

    def with_modalities(self, keep_image=True, keep_text=True) -> "RecordSet":
        """The same records with images / texts cleared where the masks (per record, or one
        bool for all) are False; a modality already cleared stays cleared."""
        n = len(self)
        return RecordSet(self.dataset, self.rows,
                         self.keep_image & np.broadcast_to(np.asarray(keep_image, bool), (n,)),
                         self.keep_text & np.broadcast_to(np.asarray(keep_text, bool), (n,)))

    # --- reading ----------------------------------------------------------------------
    def _fetch(self, start: int, stop: int) -> list[dict]:
        table = self.dataset.data.table.take(self.rows[start:stop])
        rows = table.to_pylist()
        for row, image, text in zip(rows, self.keep_image[start:stop], self.keep_text[start:stop]):
            if not image:
                row["image"] = row["image_bytes"] = None
            if not text:
                row["text"] = None
        return rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: Union[int, slice]):
        if isinstance(index, slice):
            return self.select(np.arange(len(self))[index])
        index = int(index)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"record {index} of a set of {len(self)}")
        return _record(self._fetch(index, index + 1)[0])

    def __iter__(self) -> Iterator[Record]:
        for start in range(0, len(self), self.CHUNK):
            yield from (_record(row) for row in self._fetch(start, start + self.CHUNK))

    def column(self, name: str) -> list:
        """One field of every record, in order, without building the records (`image` and
        `text` are None where masked)."""
        values = self.dataset.data.table.column(name).take(self.rows).to_pylist()
        mask = {"image": self.keep_image, "image_bytes": self.keep_image, "text": self.keep_text}.get(name)
        if mask is not None:
            values = [v if keep else None for v, keep in zip(values, mask)]
        return values

    def __eq__(self, other) -> bool:
        """Equal to a RecordSet or list holding equal records in the same order."""
        if not isinstance(other, (RecordSet, list, tuple)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # a view of a table: compared by content, not hashed

    def __repr__(self) -> str:
        return (f"RecordSet({len(self)} records of a {len(self.dataset)}-row table; images kept "
                f"{int(self.keep_image.sum())}, texts kept {int(self.keep_text.sum())})")


def as_record_set(records: Sequence[Record]) -> RecordSet:
    return RecordSet.from_records(records)


def subsample(records: Sequence[Record], limit: int | None, seed: int) -> RecordSet:
    """A seeded subset of `limit` records, kept in their original order."""
    records = as_record_set(records)
    if limit is None or limit >= len(records):
        return records
    keep = np.sort(np.random.default_rng(seed).choice(len(records), size=limit, replace=False))
    return records.select(keep)
