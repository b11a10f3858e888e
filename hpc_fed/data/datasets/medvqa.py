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

Hub copies (taken with `huggingface-cli download <id> --repo-type dataset --local-dir <dir>`)
are read from the same root, each where its files land:

    root/vqa-rad/data/{train,test}-*.parquet      flaviagiammarino/vqa-rad (or root/data/...):
                                                  columns image (embedded bytes), question,
                                                  answer; read with `datasets` (memory-mapped,
                                                  images decoded when a batch is built)
    root/medical_meadow_medical_flashcards/medical_meadow_wikidoc_medical_flashcards.json
                                                  medalpaca/medical_meadow_medical_flashcards
    root/SLAKE/{train,validation,test}.json, root/SLAKE/imgs/ or root/SLAKE/imgs.zip
                                                  BoKelvin/SLAKE (its files at the repo root,
                                                  `validation` for the official `validate`,
                                                  images zipped: read from the zip, unextracted)

The Hub's VQA-RAD differs from the OSF release: its questions come already split train / test
(1,793 / 451 per its card: its uploader's split, not FedMLLM's phrase_type split) and it has no
qid and no answer_type. Ids are "vqarad-<split>-<row>"; answer_type is derived: CLOSED when the
answer is "yes" or "no", else OPEN (VQA-RAD's closed questions with another answer, e.g. "left"
or "right", count as OPEN there). Where both layouts of a source are present the published
release is read.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import warnings
import zipfile

from hpc_fed.data.images import ZIP_MEMBER
from hpc_fed.data.records import COLUMNS, Record, RecordSet, features
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

VQA_RAD_HUB_DIRS = ("vqa-rad", "")  # root/vqa-rad/data/*.parquet, or root/data/*.parquet
MEDALPACA_HUB_DIR = "medical_meadow_medical_flashcards"
SLAKE_HUB_DIR = "SLAKE"
SLAKE_HUB_FILES = {"train": "train.json", "validate": "validation.json", "test": "test.json"}
YES_NO = ("yes", "no")

GET_VQA_RAD = ("download VQA-RAD (https://osf.io/89kps/: 'VQA_RAD Dataset Public.json' and "
               "'VQA_RAD Image Folder') into data.root, or its Hub copy: huggingface-cli download "
               "flaviagiammarino/vqa-rad --repo-type dataset --local-dir <data.root>/vqa-rad")
GET_MEDALPACA = ("download medical_meadow_wikidoc_medical_flashcards.json from "
                 "https://huggingface.co/datasets/medalpaca/medical_meadow_medical_flashcards "
                 f"into data.root (or the repo into <data.root>/{MEDALPACA_HUB_DIR})")
GET_SLAKE = ("download SLAKE (https://www.med-vqa.com/slake/, Slake.zip) and extract its Slake1.0/ "
             "folder into data.root, or its Hub copy: huggingface-cli download BoKelvin/SLAKE "
             f"--repo-type dataset --local-dir <data.root>/{SLAKE_HUB_DIR}")


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


def load_vqa_rad(root: str, split: str) -> RecordSet:
    """VQA-RAD's "train" or "test" questions (split by phrase_type), in file order."""
    if split not in VQA_RAD_SPLITS:
        raise DataFormatError(f"VQA-RAD split {split!r} is unknown; choose one of {VQA_RAD_SPLITS}")
    root = os.path.abspath(root)
    path = os.path.join(root, VQA_RAD_FILE)
    if not os.path.isfile(path) and (files := vqa_rad_hub_files(root, split)):
        return load_vqa_rad_hub(files, split)
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
    return RecordSet.from_records(records)


def vqa_rad_hub_files(root: str, split: str) -> list[str]:
    """The parquet files of one split of a Hub copy of VQA-RAD under root (first folder found)."""
    for sub in VQA_RAD_HUB_DIRS:
        files = sorted(glob.glob(os.path.join(root, sub, "data", f"{split}-*.parquet")))
        if files:
            return files
    return []


def _hub_rows(batch: dict, indices: list[int], split: str, where: str, folder: str) -> dict:
    """Hub VQA-RAD rows -> record columns (a `datasets.map` function)."""
    out = {c: [] for c in COLUMNS}
    for i, image, question, answer in zip(indices, batch["image"], batch["question"], batch["answer"]):
        row = f"{where} row {i}"
        question, answer = str(question or "").strip(), str(answer or "").strip()
        if not question or not answer:
            raise DataFormatError(f"{row}: empty {'question' if not question else 'answer'}; "
                                  "download the file again")
        data = image.get("bytes") if isinstance(image, dict) else None
        if not data:
            raise DataFormatError(f"{row}: the image column holds no embedded image bytes; "
                                  "download the Hub copy again (its parquet files embed the images)")
        out["id"].append(f"vqarad-{split}-{i}")
        out["question"].append(question)
        out["answer"].append(answer)
        out["options"].append([])
        out["image"].append(f"{folder}@{hashlib.sha1(data).hexdigest()[:16]}")  # one name per image
        out["image_bytes"].append(data)
        out["text"].append(None)
        out["answer_type"].append("CLOSED" if answer.lower() in YES_NO else "OPEN")
    return out


def load_vqa_rad_hub(files: list[str], split: str) -> RecordSet:
    """A split of flaviagiammarino/vqa-rad's parquet files, through `datasets` (rows memory-
    mapped, images kept encoded); answer_type derived from the answer (see the module doc)."""
    from datasets import Dataset, Image

    where = os.path.join(os.path.dirname(files[0]), f"{split}-*.parquet")
    try:
        table = Dataset.from_parquet(files)
    except Exception as exc:  # pyarrow / datasets raise many kinds on a broken file
        first = str(exc).strip().splitlines()
        why = first[0][:200] if first else type(exc).__name__
        raise DataFormatError(f"{where} cannot be read as parquet ({why}); download the Hub copy "
                              "again") from None
    absent = [c for c in ("image", "question", "answer") if c not in table.column_names]
    if absent:
        raise DataFormatError(f"{where}: column(s) {absent} missing (found {table.column_names}); "
                              "expected flaviagiammarino/vqa-rad's columns image, question, answer")
    table = table.cast_column("image", Image(decode=False))  # keep the encoded bytes
    names = {"split": split, "where": where, "folder": os.path.dirname(files[0])}
    records = table.map(_hub_rows, batched=True, with_indices=True, remove_columns=table.column_names,
                        features=features(), fn_kwargs=names, desc=f"VQA-RAD {split} (Hub copy)")
    return RecordSet(records)


def load_medalpaca(root: str) -> RecordSet:
    """MedAlpaca wikidoc flashcards as text-only open-ended records, in file order."""
    path = os.path.join(os.path.abspath(root), MEDALPACA_FILE)
    hub = os.path.join(os.path.abspath(root), MEDALPACA_HUB_DIR, MEDALPACA_FILE)
    if not os.path.isfile(path) and os.path.isfile(hub):
        path = hub
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
    return RecordSet.from_records(records)


def load_slake(root: str, split: str = "test", english_only: bool = True) -> RecordSet:
    """SLAKE's questions of one split (English only by default), in file order."""
    if split not in SLAKE_SPLITS:
        raise DataFormatError(f"SLAKE split {split!r} is unknown; choose one of {SLAKE_SPLITS}")
    root = os.path.abspath(root)
    path = os.path.join(root, SLAKE_DIR, f"{split}.json")
    folder = os.path.join(root, SLAKE_DIR, SLAKE_IMAGES)
    hub = os.path.join(root, SLAKE_HUB_DIR)
    zipped = None
    if not os.path.isfile(path) and os.path.isfile(os.path.join(hub, SLAKE_HUB_FILES[split])):
        path, folder = os.path.join(hub, SLAKE_HUB_FILES[split]), os.path.join(hub, SLAKE_IMAGES)
        if not os.path.isdir(folder) and os.path.isfile(folder + ".zip"):
            zipped = folder + ".zip"
    fields = ("qid", "img_name", "question", "answer", "answer_type", "q_lang")
    records = []
    archive = None
    if zipped is not None:
        try:
            archive = zipfile.ZipFile(zipped)
        except zipfile.BadZipFile as exc:
            raise DataFormatError(f"{zipped} is not a readable zip ({exc}); download it again") from None
    for i, item in enumerate(_load_list(path, GET_SLAKE)):
        where = f"{path} record {i}"
        _fields(item, fields, where, "download SLAKE again")
        lang = str(item["q_lang"]).strip()
        if lang not in SLAKE_LANGS:
            raise DataFormatError(f"{where}: q_lang {item['q_lang']!r} is unknown; expected one of "
                                  f"{SLAKE_LANGS}")
        if english_only and lang != "en":
            continue
        if archive is not None:
            records.append(_zipped_question(item, where, archive, zipped))
            continue
        records.append(_image_question(item, f"{path} record {i}", "slake", folder,
                                       item["img_name"], f"extract Slake1.0/imgs/ of Slake.zip into {root}"))
    if archive is not None:
        archive.close()
    return RecordSet.from_records(records)


def _zipped_question(item: dict, where: str, archive: zipfile.ZipFile, zipped: str) -> Record:
    """A SLAKE item whose image is the member imgs/<img_name> of the Hub copy's imgs.zip, named
    "<zip>!<member>": read from the zip when a batch is built, never extracted to disk."""
    where = f"{where} (qid {item['qid']})"
    member = f"{SLAKE_IMAGES}/{item['img_name']}"
    if member not in archive.NameToInfo:
        raise DataFormatError(f"{where} names image {item['img_name']!r}, but {zipped} has no member "
                              f"{member}; download imgs.zip of BoKelvin/SLAKE again")
    return _record(where, id=f"slake-{item['qid']}", question=str(item["question"]).strip(),
                   answer=str(item["answer"]).strip(), image=f"{zipped}{ZIP_MEMBER}{member}",
                   answer_type=_answer_type(item["answer_type"], where))


def load_medvqa(root: str, split: str) -> RecordSet:
    """"train": VQA-RAD train + MedAlpaca; "test": VQA-RAD test; "test_slake": SLAKE test."""
    if split == "train":
        return RecordSet.concat([load_vqa_rad(root, "train"), load_medalpaca(root)])
    if split == "test":
        return load_vqa_rad(root, "test")
    if split == "test_slake":
        return load_slake(root, "test")
    raise DataFormatError(f"medvqa split {split!r} is unknown; choose one of {SPLITS}")
