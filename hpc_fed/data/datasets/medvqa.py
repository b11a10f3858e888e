"""Medical VQA as in the FedMLLM paper (v2): VQA-RAD + MedAlpaca flashcards, SLAKE for transfer.

All files lie under one root, each in its published layout:

    root/VQA_RAD Dataset Public.json     VQA-RAD: a JSON list of {"qid", "image_name", "question",
                                         "answer", "answer_type" (OPEN/CLOSED), "phrase_type", ...}
    root/VQA_RAD Image Folder/           its images (image_name is a file name in it)
    root/medical_meadow_wikidoc_medical_flashcards.json
                                         MedAlpaca flashcards: a JSON list of {"instruction",
                                         "input", "output"} (text-only question / answer pairs)
    root/Slake1.0/{train,validate,test}.json
                                         SLAKE: a JSON list of {"qid", "img_name", "question",
                                         "answer", "answer_type", "q_lang", ...}
    root/Slake1.0/imgs/                  its images (img_name is relative to it)

VQA-RAD's split follows `phrase_type`: values containing "test" ("test_freeform", "test_para")
form the test split, the others ("freeform", "para") the train split, as FedMLLM's
data_process_vqarad.py does. MedAlpaca records are text-only samples whose question is the
card's `input` and answer its `output` (the constant `instruction` is dropped, as in FedMLLM);
a card with an empty input or output is skipped (it cannot be trained on) and counted in a
warning. SLAKE keeps only English questions (q_lang "en") by default: SLAKE is bilingual and
each Chinese question is a translation of an English one; FedMLLM's evaluation script reads
every question of test.json, `english_only=False` reproduces that.

Every record is open-ended (options empty, scored by generation): answers are strings (VQA-RAD
has numeric answers, cast with str and stripped) and answer_type is the published OPEN / CLOSED
(MedAlpaca: OPEN). Ids carry their source: "vqarad-<qid>", "medalpaca-<index>", "slake-<qid>".
Records keep file order.

`load_medvqa`: split "train" = VQA-RAD train + MedAlpaca, "test" = VQA-RAD test, "test_slake" =
SLAKE test.
"""

from __future__ import annotations

import json
import os
import warnings

from hpc_fed.data.records import Record
from hpc_fed.errors import DataFormatError

VQA_RAD_FILE = "VQA_RAD Dataset Public.json"
VQA_RAD_IMAGES = "VQA_RAD Image Folder"
MEDALPACA_FILE = "medical_meadow_wikidoc_medical_flashcards.json"
SLAKE_DIR = "Slake1.0"
SLAKE_IMAGES = "imgs"
SLAKE_SPLITS = ("train", "validate", "test")
SPLITS = ("train", "test", "test_slake")
VQA_RAD_SPLITS = ("train", "test")
ANSWER_TYPES = ("OPEN", "CLOSED")
SLAKE_LANGS = ("en", "zh")

GET_VQA_RAD = ("download VQA-RAD (https://osf.io/89kps/: 'VQA_RAD Dataset Public.json' and "
               "'VQA_RAD Image Folder') into data.root")
GET_MEDALPACA = ("download medical_meadow_wikidoc_medical_flashcards.json from "
                 "https://huggingface.co/datasets/medalpaca/medical_meadow_wikidoc_medical_flashcards "
                 "into data.root")
GET_SLAKE = ("download SLAKE (https://www.med-vqa.com/slake/, Slake.zip) and extract its Slake1.0/ "
             "folder into data.root")


def _load_list(path: str, get_data: str) -> list:
    if not os.path.isfile(path):
        raise DataFormatError(f"file {path} not found; {get_data}")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise DataFormatError(f"{path} is not valid JSON ({e.msg} at line {e.lineno}, column "
                              f"{e.colno}); download the file again") from None
    if not isinstance(data, list):
        raise DataFormatError(f"{path} holds a JSON {type(data).__name__}; the published file is "
                              f"a JSON list of records: download it again")
    return data


def _fields(item, fields: tuple[str, ...], where: str, fix: str) -> None:
    if not isinstance(item, dict):
        raise DataFormatError(f"{where} is a JSON {type(item).__name__}, not an object with fields "
                              f"{fields}; {fix}")
    for field in fields:
        if field not in item:
            raise DataFormatError(f"{where}: field {field!r} is missing (expected {fields}); {fix}")


def _answer_type(value, where: str) -> str:
    answer_type = str(value).strip().upper()
    if answer_type not in ANSWER_TYPES:
        raise DataFormatError(f"{where}: answer_type {value!r} is unknown; expected one of "
                              f"{ANSWER_TYPES}")
    return answer_type


def _image(folder: str, name, where: str, fix: str) -> str:
    path = os.path.join(folder, str(name))
    if not name or not os.path.isfile(path):
        raise DataFormatError(f"{where} names image {name!r}, but {path} does not exist; {fix}")
    return path


def _record(where: str, **fields) -> Record:
    try:
        return Record(**fields)
    except DataFormatError as e:
        raise DataFormatError(f"{where}: {e}") from None


def _image_question(item: dict, where: str, prefix: str, folder: str, image_name, fix: str) -> Record:
    """One VQA-RAD / SLAKE item (qid, question, answer, answer_type) with its image."""
    where = f"{where} (qid {item['qid']})"
    return _record(where, id=f"{prefix}-{item['qid']}", question=str(item["question"]).strip(),
                   answer=str(item["answer"]).strip(), image=_image(folder, image_name, where, fix),
                   answer_type=_answer_type(item["answer_type"], where))


def load_vqa_rad(root: str, split: str) -> list[Record]:
    """VQA-RAD's "train" or "test" questions (split by phrase_type), in file order."""
    if split not in VQA_RAD_SPLITS:
        raise DataFormatError(f"VQA-RAD split {split!r} is unknown; choose one of {VQA_RAD_SPLITS}")
    root = os.path.abspath(root)
    path = os.path.join(root, VQA_RAD_FILE)
    folder = os.path.join(root, VQA_RAD_IMAGES)
    fields = ("qid", "image_name", "question", "answer", "answer_type", "phrase_type")
    records = []
    for i, item in enumerate(_load_list(path, GET_VQA_RAD)):
        where = f"{path} record {i}"
        _fields(item, fields, where, "download the file again")
        if ("test" in str(item["phrase_type"])) != (split == "test"):
            continue
        records.append(_image_question(item, f"{path} record {i}", "vqarad", folder,
                                       item["image_name"], f"extract 'VQA_RAD Image Folder' into {root}"))
    return records


def load_medalpaca(root: str) -> list[Record]:
    """MedAlpaca wikidoc flashcards as text-only open-ended records, in file order."""
    path = os.path.join(os.path.abspath(root), MEDALPACA_FILE)
    records, skipped = [], 0
    for i, item in enumerate(_load_list(path, GET_MEDALPACA)):
        where = f"{path} record {i}"
        _fields(item, ("input", "output"), where, "download the file again")
        question, answer = str(item["input"] or "").strip(), str(item["output"] or "").strip()
        if not question or not answer:
            skipped += 1
            continue
        records.append(_record(where, id=f"medalpaca-{i}", question=question, answer=answer,
                               answer_type="OPEN"))
    if skipped:
        warnings.warn(f"{path}: skipped {skipped} flashcard(s) with an empty input or output",
                      stacklevel=2)
    return records


def load_slake(root: str, split: str = "test", english_only: bool = True) -> list[Record]:
    """SLAKE's questions of one split (English only by default), in file order."""
    if split not in SLAKE_SPLITS:
        raise DataFormatError(f"SLAKE split {split!r} is unknown; choose one of {SLAKE_SPLITS}")
    root = os.path.abspath(root)
    path = os.path.join(root, SLAKE_DIR, f"{split}.json")
    folder = os.path.join(root, SLAKE_DIR, SLAKE_IMAGES)
    fields = ("qid", "img_name", "question", "answer", "answer_type", "q_lang")
    records = []
    for i, item in enumerate(_load_list(path, GET_SLAKE)):
        where = f"{path} record {i}"
        _fields(item, fields, where, "download SLAKE again")
        lang = str(item["q_lang"]).strip()
        if lang not in SLAKE_LANGS:
            raise DataFormatError(f"{where}: q_lang {item['q_lang']!r} is unknown; expected one of "
                                  f"{SLAKE_LANGS}")
        if english_only and lang != "en":
            continue
        records.append(_image_question(item, f"{path} record {i}", "slake", folder,
                                       item["img_name"], f"extract Slake1.0/imgs/ of Slake.zip into {root}"))
    return records


def load_medvqa(root: str, split: str) -> list[Record]:
    """"train": VQA-RAD train + MedAlpaca; "test": VQA-RAD test; "test_slake": SLAKE test."""
    if split == "train":
        return load_vqa_rad(root, "train") + load_medalpaca(root)
    if split == "test":
        return load_vqa_rad(root, "test")
    if split == "test_slake":
        return load_slake(root, "test")
    raise DataFormatError(f"medvqa split {split!r} is unknown; choose one of {SPLITS}")
