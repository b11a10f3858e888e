"""Local copies of the Hub versions people download (`huggingface-cli download <id> --repo-type
dataset --local-dir ...`), each built here as a small fixture in that repository's layout, and the
`datasets` contract: every loader returns records held in a `datasets.Dataset`.

Layouts (checked against the Hub repositories' file listings and dataset cards, not downloaded:
this machine has no Hub access):
  neuralcatcher/hateful_memes   train.jsonl, dev_seen/dev_unseen/test_seen/test_unseen.jsonl, img/
  flaviagiammarino/vqa-rad      data/{train,test}-00000-of-00001-<hash>.parquet: image (embedded
                                bytes), question, answer
  medalpaca/medical_meadow_medical_flashcards
                                medical_meadow_wikidoc_medical_flashcards.json
  BoKelvin/SLAKE                train.json, validation.json, test.json, imgs.zip (imgs/<name>)
  QCRI/CrisisMMD                humanitarian/{train,dev,test}.json (event_name, tweet_id,
                                image_id, tweet_text, image_path, label), data_image/...
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import datasets
import numpy as np
import pytest

from hpc_fed.config import load_config
from hpc_fed.data.datasets.crisismmd import load_crisismmd
from hpc_fed.data.datasets.hateful_memes import load_hateful_memes
from hpc_fed.data.datasets.medvqa import load_medvqa, load_slake, load_vqa_rad
from hpc_fed.data.federated import build_federated_data
from hpc_fed.data.images import ImageCache, decode_image
from hpc_fed.data.records import Record, RecordSet
from hpc_fed.data.registry import DATASETS, load_splits
from hpc_fed.errors import DataFormatError

FIXTURES = Path(__file__).parents[1] / "fixtures"
HM, CRISIS, MED = FIXTURES / "hateful_memes", FIXTURES / "crisismmd", FIXTURES / "medvqa"


def raises(fn, *fragments):
    with pytest.raises(DataFormatError) as info:
        fn()
    for fragment in fragments:
        assert fragment in str(info.value), f"{fragment!r} not in {info.value}"
    return str(info.value)


# ----------------------------------------------------------------------------- Hateful Memes

def hateful_memes_hub(tmp_path: Path) -> Path:
    root = tmp_path / "hateful_memes"
    shutil.copytree(HM, root)
    for name in ("dev_unseen.jsonl", "test_unseen.jsonl"):  # the phase-2 extras of the Hub copy
        shutil.copy(root / "dev_seen.jsonl", root / name)
    (root / "README.md").write_text("---\nlicense: other\n---\n# Hateful Memes\n")
    (root / "LICENSE.txt").write_text("Hateful Memes dataset license\n")
    return root


def test_hateful_memes_hub_copy_reads_as_published(tmp_path):
    root = hateful_memes_hub(tmp_path)
    for split in ("train", "dev", "test"):
        assert load_hateful_memes(str(root), split) == [
            r.__class__(**{**r.__dict__, "image": r.image.replace(str(HM.resolve()), str(root))})
            for r in load_hateful_memes(str(HM), split)]


def test_hateful_memes_hub_copy_missing_images_are_skipped_on_request(tmp_path):
    root = hateful_memes_hub(tmp_path)
    (root / "img" / "23058.png").unlink()  # a mirror that lacks some images
    raises(lambda: load_hateful_memes(str(root), "train"), "23058.png", "does not exist",
           "data.on_error=skip")
    base = [f"data.root={root}", "data.name=hateful_memes", "fed.num_clients=2", "data.partition=iid"]
    with pytest.raises(DataFormatError, match="23058.png"):
        build_federated_data(load_config(None, base).data, 2)
    data = build_federated_data(load_config(None, [*base, "data.on_error=skip"]).data, 2)
    assert [s["id"] for s in data.skipped] == ["23058"] and "FileNotFoundError" in data.skipped[0]["error"]
    assert sum(data.sizes) == 3


# ----------------------------------------------------------------------------- VQA-RAD, MedAlpaca, SLAKE

RAD_ROWS = {  # (image in the published fixture, question, answer) per split, as the Hub copy has them
    "train": [("synpic54610.jpg", "are regions of the brain infarcted?", "yes"),
              ("synpic29265.jpg", "how many lesions are in the spleen?", "2"),
              ("synpic31232.jpg", "is this an axial image?", "yes")],
    "test": [("synpic54610.jpg", "where is the lesion?", "left temporal lobe"),
             ("synpic31232.jpg", "is there a fracture?", "no")],
}


def write_vqa_rad_hub(folder: Path, rows=RAD_ROWS) -> None:
    """Parquet files as the Hub serves them: written by `datasets` with an Image feature (a struct
    of the encoded bytes and a null path), one shard per split."""
    features = datasets.Features({"image": datasets.Image(), "question": datasets.Value("string"),
                                  "answer": datasets.Value("string")})
    (folder / "data").mkdir(parents=True)
    images = MED / "VQA_RAD Image Folder"
    for split, hash_ in (("train", "eb8844602202be60"), ("test", "e5bc3d208bb4deeb")):
        table = {"image": [{"bytes": (images / n).read_bytes(), "path": None} for n, _, _ in rows[split]],
                 "question": [q for _, q, _ in rows[split]], "answer": [a for _, _, a in rows[split]]}
        datasets.Dataset.from_dict(table, features=features).to_parquet(
            str(folder / "data" / f"{split}-00000-of-00001-{hash_}.parquet"))


def medvqa_hub(tmp_path: Path) -> Path:
    root = tmp_path / "medvqa"
    write_vqa_rad_hub(root / "vqa-rad")
    cards = root / "medical_meadow_medical_flashcards"
    cards.mkdir(parents=True)
    shutil.copy(MED / "medical_meadow_wikidoc_medical_flashcards.json", cards)
    slake = root / "SLAKE"
    slake.mkdir()
    published = MED / "Slake1.0"
    shutil.copy(published / "train.json", slake / "train.json")
    shutil.copy(published / "train.json", slake / "validation.json")
    shutil.copy(published / "test.json", slake / "test.json")
    with zipfile.ZipFile(slake / "imgs.zip", "w") as z:
        for path in sorted((published / "imgs").rglob("*")):
            if path.is_file():
                z.write(path, f"imgs/{path.relative_to(published / 'imgs').as_posix()}")
    return root


def test_vqa_rad_hub_parquet_through_datasets(tmp_path):
    root = medvqa_hub(tmp_path)
    train, test = load_vqa_rad(str(root), "train"), load_vqa_rad(str(root), "test")
    assert isinstance(train, RecordSet) and isinstance(train.dataset, datasets.Dataset)
    assert train.dataset.cache_files, "read through datasets' memory-mapped Arrow files"
    assert [r.id for r in train] == ["vqarad-train-0", "vqarad-train-1", "vqarad-train-2"]
    assert [r.id for r in test] == ["vqarad-test-0", "vqarad-test-1"]
    assert [r.answer_type for r in [*train, *test]] == ["CLOSED", "OPEN", "CLOSED", "OPEN", "CLOSED"]
    assert all(r.options == () and r.text is None for r in [*train, *test])
    # the images stay encoded in the table: named by their bytes, decoded when a batch is built
    assert train[0].image == test[0].image != train[2].image  # synpic54610 in both splits
    assert train[0].image_bytes == (MED / "VQA_RAD Image Folder" / "synpic54610.jpg").read_bytes()
    assert decode_image(train[0].image, train[0].image_bytes).size == \
        decode_image(str(MED / "VQA_RAD Image Folder" / "synpic54610.jpg")).size
    cache = ImageCache(1 << 20)
    cache.get(train[0].image, train[0].image_bytes)
    cache.get(test[0].image, test[0].image_bytes)
    assert (cache.hits, cache.misses) == (1, 1)
    # medvqa's train split: the Hub VQA-RAD then the Hub MedAlpaca cards
    assert [r.id.split("-")[0] for r in load_medvqa(str(root), "train")] == ["vqarad"] * 3 + ["medalpaca"] * 3


def test_vqa_rad_hub_bad_files(tmp_path):
    root = tmp_path / "rad"
    rows = {s: list(r) for s, r in RAD_ROWS.items()}
    rows["train"][1] = ("synpic29265.jpg", "how many lesions are in the spleen?", " ")
    write_vqa_rad_hub(root, rows)
    raises(lambda: load_vqa_rad(str(root), "train"), "train-*.parquet row 1", "empty answer")
    raises(lambda: load_vqa_rad(str(tmp_path / "none"), "train"), "VQA_RAD Dataset Public.json",
           "flaviagiammarino/vqa-rad")
    shard = next((root / "data").glob("test-*.parquet"))
    shard.write_bytes(b"not parquet")
    raises(lambda: load_vqa_rad(str(root), "test"), "test-*.parquet cannot be read as parquet")
    datasets.Dataset.from_dict({"img": ["x"], "question": ["q"], "answer": ["a"]}).to_parquet(str(shard))
    raises(lambda: load_vqa_rad(str(root), "test"), "column(s) ['image'] missing")


def test_unreadable_embedded_image_is_named_and_skippable(tmp_path):
    root = medvqa_hub(tmp_path)
    shutil.rmtree(root / "vqa-rad" / "data")
    rows = dict(RAD_ROWS)
    write_vqa_rad_hub(root / "vqa-rad", rows)
    shard = next((root / "vqa-rad" / "data").glob("train-*.parquet"))
    table = datasets.Dataset.from_parquet(str(shard)).cast_column("image", datasets.Image(decode=False))
    broken = table.to_dict()
    broken["image"][1] = {"bytes": b"\x89PNG garbage", "path": None}
    datasets.Dataset.from_dict(broken, features=table.features).to_parquet(str(shard))
    base = [f"data.root={root}", "data.name=medvqa", "fed.num_clients=2", "data.partition=iid",
            "eval.mode=generation"]
    message = raises(lambda: build_federated_data(load_config(None, base).data, 2),
                     "vqa-rad/data@", "record 'vqarad-train-1'", "(embedded bytes)",
                     "data.on_error=skip")
    assert "Traceback" not in message
    data = build_federated_data(load_config(None, [*base, "data.on_error=skip"]).data, 2)
    assert [s["id"] for s in data.skipped] == ["vqarad-train-1"] and sum(data.sizes) == 5


def test_slake_hub_copy_reads_images_from_the_zip(tmp_path):
    root = medvqa_hub(tmp_path)
    test = load_slake(str(root), "test")
    assert [r.id for r in test] == ["slake-11934", "slake-11936"]
    assert [r.answer_type for r in test] == ["OPEN", "CLOSED"]
    assert test[0].image == f"{root / 'SLAKE' / 'imgs.zip'}!imgs/xmlab102/source.jpg"
    assert not (root / "SLAKE" / "imgs").exists()  # nothing extracted
    assert decode_image(test[0].image).size == decode_image(
        str(MED / "Slake1.0" / "imgs" / "xmlab102" / "source.jpg")).size
    assert [r.id for r in load_slake(str(root), "validate")] == ["slake-0"]  # validation.json
    items = json.loads((root / "SLAKE" / "test.json").read_text())
    items[0]["img_name"] = "xmlab999/source.jpg"
    (root / "SLAKE" / "test.json").write_text(json.dumps(items))
    raises(lambda: load_slake(str(root), "test"), "xmlab999/source.jpg", "imgs.zip", "no member")


# ----------------------------------------------------------------------------- CrisisMMD

HUB_LABELS = sorted(["affected_individuals", "infrastructure_and_utility_damage", "injured_or_dead_people",
                     "missing_or_found_people", "rescue_volunteering_or_donation_effort", "vehicle_damage",
                     "other_relevant_information", "not_humanitarian"])


def crisismmd_hub(tmp_path: Path, label_image: bool = False, lines: bool = False) -> Path:
    """QCRI/CrisisMMD's layout built from the published fixture's rows: humanitarian/<split>.json
    with `label` (the Hub's only label) and `image_path`, and data_image/."""
    import csv

    root = tmp_path / "CrisisMMD"
    shutil.copytree(CRISIS / "data_image", root / "data_image")
    (root / "humanitarian").mkdir()
    for split in ("train", "dev", "test"):
        path = CRISIS / "crisismmd_datasplit_all" / f"task_humanitarian_text_img_{split}.tsv"
        with open(path, encoding="utf-8", newline="") as f:
            tsv = list(csv.DictReader(f, delimiter="\t"))
        rows = [{"event_name": r["event_name"], "tweet_id": r["tweet_id"], "image_id": r["image_id"],
                 "tweet_text": r["tweet_text"], "image_path": r["image"], "label": r["label"],
                 **({"label_image": HUB_LABELS.index(r["label_image"])} if label_image else {})}
                for r in tsv]
        text = "".join(json.dumps(r) + "\n" for r in rows) if lines else json.dumps(rows)
        (root / "humanitarian" / f"{split}.json").write_text(text)
    return root


def test_crisismmd_hub_json_refused_for_its_label_then_read_with_the_tsvs(tmp_path):
    root = crisismmd_hub(tmp_path)
    raises(lambda: load_crisismmd(str(root), "train"), "humanitarian/train.json", "`label`",
           "label_image", "crisismmd_datasplit_all.zip")
    shutil.copytree(CRISIS / "crisismmd_datasplit_all", root / "crisismmd_datasplit_all")
    for split in ("train", "dev", "test"):
        hub, published = load_crisismmd(str(root), split), load_crisismmd(str(CRISIS), split)
        assert [(r.id, r.answer, r.text) for r in hub] == [(r.id, r.answer, r.text) for r in published]
        assert all(r.image.startswith(str(root / "data_image")) for r in hub)


def test_crisismmd_hub_json_with_label_image_is_read(tmp_path):
    root = crisismmd_hub(tmp_path, label_image=True, lines=True)
    for split in ("train", "test"):
        hub, published = load_crisismmd(str(root), split), load_crisismmd(str(CRISIS), split)
        assert [(r.id, r.answer, r.text, r.options) for r in hub] == \
            [(r.id, r.answer, r.text, r.options) for r in published]


# ----------------------------------------------------------------------------- the datasets contract

ROOTS = {"hateful_memes": HM, "crisismmd": CRISIS, "medvqa": MED, "fedmllm": FIXTURES / "fedmllm" / "llava"}


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_loader_returns_records_in_a_datasets_table(name):
    overrides = [f"data.name={name}", "data.max_test_samples=4"]
    if name in ROOTS:
        overrides.append(f"data.root={ROOTS[name]}")
    if DATASETS[name].open_ended:
        overrides.append("eval.mode=generation")
    if name == "fedmllm":
        overrides.append(f"data.image_root={FIXTURES / 'fedmllm' / 'llava' / 'images'}")
    else:
        overrides.append("data.max_train_samples=6")
    cfg = load_config(None, overrides).data
    train, test, _ = load_splits(cfg)
    for split in (train, test):
        assert isinstance(split, RecordSet) and isinstance(split.dataset, datasets.Dataset)
        assert len(split) and isinstance(split[0], Record)
        assert split.dataset.column_names[:4] == ["id", "question", "answer", "options"]


def test_partitions_and_scenarios_select_rows_of_one_table():
    cfg = load_config(None, ["data.name=easyvqa_claims", "data.max_train_samples=600",
                             "data.scenario=missing", "data.beta=0.5"]).data
    data = build_federated_data(cfg, 4)
    table = data.train.dataset
    assert len(table) > len(data.train) == 600  # the subset is an index into the loaded table
    client = data.train.select(data.parts[0])
    assert client.dataset is table and len(client) == len(data.parts[0])
    # the scenario cleared modalities through masks: the table itself still holds every image
    assert sum(v is None for v in data.train.column("image")) > 200
    assert all(v is not None for v in table.select_columns(["image"]).to_dict()["image"])
    assert np.array_equal(client.rows, data.train.rows[data.parts[0]])


def test_a_hub_id_as_data_root_names_the_download_command():
    from hpc_fed.errors import ConfigError

    with pytest.raises(ConfigError, match="hpc-fed download --dataset neuralcatcher/hateful_memes "
                                          "--local-dir DIR"):
        load_config(None, ["data.name=hateful_memes", "data.root=neuralcatcher/hateful_memes"])


def test_slake_is_a_test_set_reachable_from_config(tmp_path):
    from hpc_fed.errors import ConfigError

    base = ["data.name=medvqa", f"data.root={MED}", "eval.mode=generation", "data.test_set=slake"]
    train, test, _ = load_splits(load_config(None, base).data)
    assert [r.id for r in test] == ["slake-11934", "slake-11936"]
    assert [r.id.split("-")[0] for r in train] == ["vqarad"] * 3 + ["medalpaca"] * 3
    with pytest.raises(ConfigError, match="data.test_set"):
        load_config(None, ["data.name=hateful_memes", f"data.root={HM}", "data.test_set=slake"])


def test_record_set_refuses_a_boolean_mask_as_positions():
    records = RecordSet.from_records(Record(id=str(i), question="q", answer="a") for i in range(3))
    assert [r.id for r in records] == ["0", "1", "2"]  # a generator is read once
    with pytest.raises(TypeError, match="flatnonzero"):
        records.select(np.array([True, False, True]))
    assert [r.id for r in records.select(np.flatnonzero([True, False, True]))] == ["0", "2"]
