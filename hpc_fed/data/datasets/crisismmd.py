"""CrisisMMD v2.0, humanitarian task (image label), read in its published layout.

    root/crisismmd_datasplit_all/task_humanitarian_text_img_{train,dev,test}.tsv
        tab-separated, one header line: event_name tweet_id image_id tweet_text image label
        label_text label_image label_text_image
    root/data_image/...        the images; `image` is relative to root
                               (e.g. data_image/california_wildfires/10_10_2017/917791044158185473_0.jpg)

As in FedMLLM, the class is `label_image` (8 humanitarian categories) and the sample's text is
the tweet with URLs (`http...` up to the next space) removed; whitespace is then collapsed to
single spaces, and a tweet left empty gives text None. Option strings are the categories with
underscores turned into spaces ("affected_individuals" -> "affected individuals"), in FedMLLM's
order. Record ids are the TSV's image_id (a tweet with several images gives several records).
The TSV is parsed like pandas' default reader (tab delimiter, double-quote quoting), as FedMLLM
reads it. Records keep file order.

The Hub copy `QCRI/CrisisMMD` (huggingface-cli download ... --local-dir <root>) holds
data_image/ (the same tree) and humanitarian/{train,dev,test}.json with the columns event_name,
tweet_id, image_id, tweet_text, image_path, label, where `label` is one label per pair, taken at
random from the text and the image labels (the release's readme), not `label_image`, the image
label FedMLLM's split trains and scores on. So the Hub's JSON alone cannot give FedMLLM's task
and is refused, naming the fix: put crisismmd_datasplit_all/ (the TSVs above) beside its
data_image/, which is then read as the published layout. A Hub JSON whose rows do carry
`label_image` (a string, or an index into the card's alphabetical class list) is read as is.
"""

from __future__ import annotations

import csv
import json
import os
import re

from hpc_fed.data.records import Record, RecordSet
from hpc_fed.errors import DataFormatError

QUESTION = "What is the humanitarian category?"
CATEGORIES = ("affected_individuals", "infrastructure_and_utility_damage", "injured_or_dead_people",
              "missing_or_found_people", "rescue_volunteering_or_donation_effort", "vehicle_damage",
              "other_relevant_information", "not_humanitarian")
OPTIONS = tuple(c.replace("_", " ") for c in CATEGORIES)
LABEL_TO_OPTION = dict(zip(CATEGORIES, OPTIONS))
SPLITS = ("train", "dev", "test")
SPLIT_DIR = "crisismmd_datasplit_all"
COLUMNS = ("event_name", "tweet_id", "image_id", "tweet_text", "image", "label", "label_text",
           "label_image", "label_text_image")
USED_COLUMNS = ("image_id", "tweet_text", "image", "label_image")
GET_DATA = ("download CrisisMMD v2.0 (CrisisMMD_v2.0.tar.gz with data_image/) and its "
            "crisismmd_datasplit_all.zip from https://crisisnlp.qcri.org/crisismmd, and set "
            "data.root to the CrisisMMD_v2.0 folder holding data_image/ and crisismmd_datasplit_all/")
_URL = re.compile(r"http\S+")


def clean_tweet(text: str) -> str:
    """The tweet without URLs, whitespace collapsed to single spaces."""
    return " ".join(_URL.sub("", text).split())


def split_path(root: str, split: str) -> str:
    return os.path.join(root, SPLIT_DIR, f"task_humanitarian_text_img_{split}.tsv")


HUB_DIR = "humanitarian"
HUB_CLASSES = tuple(sorted(CATEGORIES))  # the Hub card's ClassLabel order (alphabetical)


def _hub_rows(path: str) -> list[dict]:
    """The rows of a Hub copy's JSON file (a JSON list, or one object a line)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        rows = json.loads(text)
    except json.JSONDecodeError:
        try:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as e:
            raise DataFormatError(f"{path} is neither a JSON list nor JSON Lines ({e.msg}); "
                                  "download the Hub copy again") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise DataFormatError(f"{path}: expected a list of JSON objects; download the Hub copy again")
    return rows


def load_crisismmd_hub(root: str, split: str) -> RecordSet:
    """A split of a Hub copy (QCRI/CrisisMMD, humanitarian/), when its rows carry label_image."""
    path = os.path.join(root, HUB_DIR, f"{split}.json")
    rows = _hub_rows(path)
    if rows and "label_image" not in rows[0]:
        raise DataFormatError(
            f"{path} carries `label` (drawn at random from the text and the image labels), not "
            "`label_image`, the image label FedMLLM's CrisisMMD task uses; get "
            "crisismmd_datasplit_all.zip from https://crisisnlp.qcri.org/crisismmd and extract it "
            f"into {root} (beside data_image/): the TSVs there carry label_image and are read instead")
    records = []
    for i, row in enumerate(rows):
        where = f"{path} record {i}"
        rel = str(row.get("image_path") or row.get("image") or "").strip()
        label = row.get("label_image")
        if isinstance(label, int) and not isinstance(label, bool) and 0 <= label < len(HUB_CLASSES):
            label = HUB_CLASSES[label]
        if label not in LABEL_TO_OPTION:
            raise DataFormatError(f"{where}: label_image {label!r} is unknown; expected one of "
                                  f"{CATEGORIES}")
        image = os.path.join(root, rel)
        if not rel or not os.path.isfile(image):
            raise DataFormatError(f"{where} names image {rel!r}, but {image} does not exist; "
                                  f"download data_image/ of the Hub copy into {root}")
        text = clean_tweet(str(row.get("tweet_text") or ""))
        records.append(Record(id=str(row.get("image_id") or f"{split}-{i}"), question=QUESTION,
                              answer=LABEL_TO_OPTION[label], options=OPTIONS, image=image,
                              text=text or None))
    return RecordSet.from_records(records)


def load_crisismmd(root: str, split: str) -> RecordSet:
    """The records of one split ("train", "dev" or "test"), in file order."""
    if split not in SPLITS:
        raise DataFormatError(f"CrisisMMD split {split!r} is unknown; choose one of {SPLITS}")
    root = os.path.abspath(root)
    path = split_path(root, split)
    if not os.path.isfile(path) and os.path.isfile(os.path.join(root, HUB_DIR, f"{split}.json")):
        return load_crisismmd_hub(root, split)
    if not os.path.isfile(path):
        raise DataFormatError(f"CrisisMMD file {path} not found; {GET_DATA}")
    records = []
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader, None)
        if header is None:
            raise DataFormatError(f"{path} is empty; re-extract crisismmd_datasplit_all.zip")
        header = [h.strip() for h in header]
        absent = [c for c in USED_COLUMNS if c not in header]
        if absent:
            raise DataFormatError(f"{path} line 1: column(s) {absent} missing from the header "
                                  f"{header}; expected the published columns {COLUMNS}: "
                                  "re-extract crisismmd_datasplit_all.zip")
        col = {name: header.index(name) for name in USED_COLUMNS}
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                raise DataFormatError(f"{path} line {reader.line_num}: malformed TSV ({e}); "
                                      "re-extract crisismmd_datasplit_all.zip") from None
            if not any(cell.strip() for cell in row):
                continue
            where = f"{path} line {reader.line_num}"
            if len(row) != len(header):
                raise DataFormatError(f"{where} has {len(row)} tab-separated fields, the header "
                                      f"{len(header)}; fix the line (a tab or quote inside the "
                                      "tweet?) or re-extract crisismmd_datasplit_all.zip")
            label = row[col["label_image"]].strip()
            if label not in LABEL_TO_OPTION:
                raise DataFormatError(f"{where}: label_image {label!r} is unknown; expected one of "
                                      f"{CATEGORIES} (the humanitarian task's file)")
            rel = row[col["image"]].strip()
            image = os.path.join(root, rel)
            if not rel or not os.path.isfile(image):
                raise DataFormatError(f"{where} names image {rel!r}, but {image} does not exist; "
                                      f"extract data_image/ of CrisisMMD_v2.0.tar.gz into {root}")
            text = clean_tweet(row[col["tweet_text"]])
            try:
                records.append(Record(id=row[col["image_id"]].strip(), question=QUESTION,
                                      answer=LABEL_TO_OPTION[label], options=OPTIONS, image=image,
                                      text=text or None))
            except DataFormatError as e:
                raise DataFormatError(f"{where}: {e}") from None
    return RecordSet.from_records(records)
