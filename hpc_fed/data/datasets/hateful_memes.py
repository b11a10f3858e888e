"""Facebook Hateful Memes (phase-2 release), read in its published layout.

    root/train.jsonl, root/dev_seen.jsonl, root/test_seen.jsonl
        one JSON object a line: {"id": 42953, "img": "img/42953.png", "label": 0, "text": "..."}
    root/img/                  the meme images; `img` is relative to root

Splits: train -> train.jsonl, dev -> dev_seen.jsonl, test -> test_seen.jsonl (the labelled test
set of the phase-2 release, the one FedMLLM reports ROC-AUC on). The phase-1 `test.jsonl` has no
labels and is refused. Each line gives one record: question "Is the content hateful?" (FedMLLM's
wording without its modality phrase), text = the meme's text, image = the absolute path of the
meme, options ("not-hateful", "hateful") with the positive class last. Records keep file order.

The Hub copy `neuralcatcher/hateful_memes` (huggingface-cli download ... --local-dir <root>) has
this layout (train / dev_seen / dev_unseen / test_seen / test_unseen .jsonl, img/), and is read
as it is. Its img/ may lack some images (reported for that mirror: ids ending in 8 or 9): an
image file that is missing stops the load, naming it, unless `missing_images="keep"`
(data.on_error=skip), which leaves the record to the load-time image check: it is then left
out and listed in skipped.jsonl like an unreadable image.
"""

from __future__ import annotations

import json
import os

from hpc_fed.data.records import Record, RecordSet
from hpc_fed.errors import DataFormatError

QUESTION = "Is the content hateful?"
OPTIONS = ("not-hateful", "hateful")
SPLIT_FILES = {"train": "train.jsonl", "dev": "dev_seen.jsonl", "test": "test_seen.jsonl"}
SPLITS = tuple(SPLIT_FILES)
FIELDS = ("id", "img", "label", "text")
GET_DATA = ("download the Hateful Memes phase-2 release (https://hatefulmemeschallenge.com, or its "
            "Kaggle mirror) and set data.root to the folder holding train.jsonl, dev_seen.jsonl, "
            "test_seen.jsonl and img/")


def _label(value, where: str) -> int:
    if isinstance(value, bool) or str(value).strip() not in ("0", "1"):
        raise DataFormatError(f"{where}: label {value!r} is unknown; Hateful Memes labels are 0 "
                              "(not hateful) or 1 (hateful)")
    return int(str(value).strip())


def _missing_file_hint(root: str, path: str, split: str) -> str:
    nested = os.path.join(root, "data", os.path.basename(path))
    if os.path.isfile(nested):
        return f"set data.root to {os.path.join(root, 'data')} (the archive's data/ folder)"
    if split == "dev" and os.path.isfile(os.path.join(root, "dev.jsonl")):
        return ("this is the phase-1 release (dev.jsonl); get the phase-2 release with "
                "dev_seen.jsonl / test_seen.jsonl")
    return GET_DATA


def load_hateful_memes(root: str, split: str, missing_images: str = "raise") -> RecordSet:
    """The records of one split ("train", "dev" or "test"), in file order. `missing_images`:
    "raise" (an image file that does not exist stops the load) or "keep" (see the module doc)."""
    if split not in SPLIT_FILES:
        raise DataFormatError(f"Hateful Memes split {split!r} is unknown; choose one of {SPLITS}")
    root = os.path.abspath(root)
    path = os.path.join(root, SPLIT_FILES[split])
    if not os.path.isfile(path):
        raise DataFormatError(f"Hateful Memes file {path} not found; "
                              f"{_missing_file_hint(root, path, split)}")
    records = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path} line {line_no}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataFormatError(f"{where} is not valid JSON ({e.msg}); each line must be one "
                                      "JSON object: re-extract the file from the release") from None
            if not isinstance(row, dict):
                raise DataFormatError(f"{where} is a JSON {type(row).__name__}, not an object with "
                                      f"fields {FIELDS}; re-extract the file from the release")
            if "label" not in row:
                if split == "test":
                    raise DataFormatError(
                        f"{where} has no 'label': this is an unlabelled test split; use "
                        "test_seen.jsonl from the phase-2 release (it carries labels)")
                raise DataFormatError(f"{where}: field 'label' is missing; re-extract the file "
                                      "from the release")
            for field in FIELDS:
                if field not in row:
                    raise DataFormatError(f"{where}: field {field!r} is missing (expected fields "
                                          f"{FIELDS}); re-extract the file from the release")
            label = _label(row["label"], where)
            image = os.path.join(root, str(row["img"]))
            if missing_images != "keep" and not os.path.isfile(image):
                raise DataFormatError(f"{where} names image {row['img']!r}, but {image} does not "
                                      "exist; extract the img/ folder of the release into "
                                      f"{root}, or set data.on_error=skip to leave out the samples "
                                      "whose image is missing (a Hub copy may lack some)")
            text = str(row["text"]).strip() if row["text"] is not None else ""
            try:
                records.append(Record(id=str(row["id"]), question=QUESTION, answer=OPTIONS[label],
                                      options=OPTIONS, image=image, text=text or None))
            except DataFormatError as e:
                raise DataFormatError(f"{where}: {e}") from None
    return RecordSet.from_records(records)
