"""Disk dataset loaders on fixtures in their published layouts (tests/fixtures/make_fixtures.py)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from hpc_fed.data.datasets import crisismmd, medvqa
from hpc_fed.data.datasets.crisismmd import load_crisismmd
from hpc_fed.data.datasets.fedmllm import load_fedmllm_clients, load_fedmllm_test, match_answer, parse_turns
from hpc_fed.data.datasets.hateful_memes import load_hateful_memes
from hpc_fed.data.datasets.medvqa import load_medalpaca, load_medvqa, load_slake, load_vqa_rad
from hpc_fed.errors import DataFormatError

FIXTURES = Path(__file__).parents[1] / "fixtures"
HM = FIXTURES / "hateful_memes"
CRISIS = FIXTURES / "crisismmd"
MED = FIXTURES / "medvqa"
MINICPMV = FIXTURES / "fedmllm" / "minicpmv"
LLAVA = FIXTURES / "fedmllm" / "llava"
LLAVA_IMAGES = LLAVA / "images"


def raises(fn, *fragments):
    """Call fn, expect a DataFormatError whose message holds every fragment."""
    with pytest.raises(DataFormatError) as info:
        fn()
    message = str(info.value)
    for fragment in fragments:
        assert str(fragment) in message, f"{fragment!r} not in {message!r}"
    return message


def copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    return dst


def rewrite_lines(path: Path, edit) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(edit(lines)) + "\n", encoding="utf-8")


def assert_images_exist(records):
    for r in records:
        if r.image is not None:
            assert os.path.isabs(r.image) and os.path.isfile(r.image), r.image


# ----------------------------------------------------------------------------- Hateful Memes

def test_hateful_memes_splits_fields_and_labels():
    train = load_hateful_memes(str(HM), "train")
    assert [r.id for r in train] == ["42953", "23058", "13894", "1235"]  # file order
    assert [r.answer for r in train] == ["not-hateful", "hateful", "not-hateful", "hateful"]
    assert [r.label for r in train] == [0, 1, 0, 1]
    r = train[0]
    assert r.question == "Is the content hateful?"
    assert r.options == ("not-hateful", "hateful") and r.options[-1] == "hateful"  # positive last
    assert r.text == "its their character not their color that matters"
    assert r.answer_type is None
    assert r.image == str(HM.resolve() / "img" / "42953.png")
    assert train[3].image.endswith(os.path.join("img", "01235.png"))  # leading zero kept in the path
    assert_images_exist(train)
    assert [r.id for r in load_hateful_memes(str(HM), "dev")] == ["8291", "46971"]
    assert [r.id for r in load_hateful_memes(str(HM), "test")] == ["16395", "37405"]


def test_hateful_memes_split_and_missing_files(tmp_path):
    raises(lambda: load_hateful_memes(str(HM), "test_unseen"), "test_unseen", "train", "dev")
    raises(lambda: load_hateful_memes(str(tmp_path), "train"),
           str(tmp_path / "train.jsonl"), "not found", "hatefulmemeschallenge.com", "data.root")
    # The archive's data/ folder one level below the given root.
    shutil.copytree(HM, tmp_path / "data")
    raises(lambda: load_hateful_memes(str(tmp_path), "train"), "set data.root to",
           str(tmp_path / "data"))
    # Phase-1 release: dev.jsonl instead of dev_seen.jsonl.
    phase1 = tmp_path / "phase1"
    phase1.mkdir()
    shutil.copy(HM / "train.jsonl", phase1 / "dev.jsonl")
    raises(lambda: load_hateful_memes(str(phase1), "dev"), "dev_seen.jsonl", "phase-2")


def test_hateful_memes_bad_rows(tmp_path):
    root = copy(HM, tmp_path)
    train = root / "train.jsonl"
    original = train.read_text(encoding="utf-8")

    rewrite_lines(train, lambda lines: [lines[0], "{not json", *lines[1:]])
    raises(lambda: load_hateful_memes(str(root), "train"), str(train), "line 2", "not valid JSON")

    train.write_text(original + json.dumps({"id": 1, "img": "img/42953.png", "label": 0}) + "\n")
    raises(lambda: load_hateful_memes(str(root), "train"), "line 5", "'text' is missing")

    train.write_text(original + json.dumps({"id": 1, "img": "img/42953.png", "label": 2,
                                            "text": "x"}) + "\n")
    raises(lambda: load_hateful_memes(str(root), "train"), "line 5", "label 2 is unknown")

    train.write_text(original + "[1, 2]\n")
    raises(lambda: load_hateful_memes(str(root), "train"), "line 5", "not an object")

    train.write_text(original)
    (root / "img" / "23058.png").unlink()
    raises(lambda: load_hateful_memes(str(root), "train"), "line 2", "img/23058.png",
           "does not exist", "img/ folder")


def test_hateful_memes_unlabelled_test_split(tmp_path):
    root = copy(HM, tmp_path)
    rows = [json.loads(line) for line in (root / "test_seen.jsonl").read_text().splitlines()]
    (root / "test_seen.jsonl").write_text(
        "".join(json.dumps({k: v for k, v in r.items() if k != "label"}) + "\n" for r in rows))
    raises(lambda: load_hateful_memes(str(root), "test"), str(root / "test_seen.jsonl"), "line 1",
           "unlabelled test split", "test_seen.jsonl from the phase-2 release")


# ----------------------------------------------------------------------------- CrisisMMD

def test_crisismmd_records_labels_and_text_cleaning():
    train = load_crisismmd(str(CRISIS), "train")
    assert [r.id for r in train] == ["917791044158185473_0", "917791044158185473_1",
                                     "901646074527535105_0", "905960092822003712_0"]
    assert [r.answer for r in train] == ["infrastructure and utility damage", "not humanitarian",
                                         "rescue volunteering or donation effort",
                                         "affected individuals"]  # label_image, not label_text
    r = train[0]
    assert r.question == "What is the humanitarian category?"
    assert r.options == crisismmd.OPTIONS and len(r.options) == 8
    assert r.options[0] == "affected individuals" and r.options[-1] == "not humanitarian"
    assert all(o == o.lower() and "_" not in o for o in r.options)
    assert r.text == "RT @Gizmodo: Wildfires raging through Northern California"  # URL removed
    assert train[2].text == "Volunteers deliver water in Houston #Harvey"  # URL + spaces
    assert r.image == str(CRISIS.resolve() / "data_image" / "california_wildfires" / "10_10_2017"
                          / "917791044158185473_0.jpg")
    assert_images_exist(train)
    dev = load_crisismmd(str(CRISIS), "dev")
    assert [r.answer for r in dev] == ["vehicle damage", "injured or dead people"]
    assert dev[1].text is None  # the tweet was only a URL
    test = load_crisismmd(str(CRISIS), "test")
    assert [r.answer for r in test] == ["missing or found people", "other relevant information"]


def test_crisismmd_errors(tmp_path):
    raises(lambda: load_crisismmd(str(CRISIS), "validation"), "validation", "train", "dev")
    raises(lambda: load_crisismmd(str(tmp_path), "train"), "task_humanitarian_text_img_train.tsv",
           "not found", "crisisnlp.qcri.org", "crisismmd_datasplit_all")
    root = copy(CRISIS, tmp_path)
    tsv = root / "crisismmd_datasplit_all" / "task_humanitarian_text_img_dev.tsv"
    original = tsv.read_text(encoding="utf-8")

    tsv.write_text(original.replace("\tlabel_image\t", "\tlabel_img\t", 1), encoding="utf-8")
    raises(lambda: load_crisismmd(str(root), "dev"), str(tsv), "line 1", "['label_image']",
           "missing from the header")

    tsv.write_text(original, encoding="utf-8")
    rewrite_lines(tsv, lambda lines: [lines[0], lines[1].rsplit("\t", 1)[0], *lines[2:]])
    raises(lambda: load_crisismmd(str(root), "dev"), "line 2", "8 tab-separated fields",
           "header 9")

    tsv.write_text(original.replace("\tinjured_or_dead_people\tPositive", "\tflood\tPositive"),
                   encoding="utf-8")
    raises(lambda: load_crisismmd(str(root), "dev"), "line 3", "label_image 'flood' is unknown",
           "not_humanitarian")

    tsv.write_text(original, encoding="utf-8")
    next((root / "data_image" / "mexico_earthquake").rglob("*.jpg")).unlink()
    raises(lambda: load_crisismmd(str(root), "dev"), "line 2", "910586466339848193_0.jpg",
           "does not exist", "data_image/")


def test_clean_tweet():
    assert crisismmd.clean_tweet("a https://t.co/x\tb  http://y.z/q?x=1 c\n") == "a b c"
    assert crisismmd.clean_tweet("https://t.co/x") == ""


# ----------------------------------------------------------------------------- medical VQA

def test_vqa_rad_split_by_phrase_type():
    train = load_vqa_rad(str(MED), "train")
    test = load_vqa_rad(str(MED), "test")
    assert [r.id for r in train] == ["vqarad-0", "vqarad-1", "vqarad-3"]
    assert [r.id for r in test] == ["vqarad-2", "vqarad-4"]
    assert train[1].answer == "2"  # numeric answer cast to str
    assert [r.answer_type for r in train] == ["CLOSED", "OPEN", "CLOSED"]
    for r in [*train, *test]:
        assert r.options == () and r.text is None and r.question
    assert train[0].image == str(MED.resolve() / "VQA_RAD Image Folder" / "synpic54610.jpg")
    assert_images_exist([*train, *test])


def test_medalpaca_and_slake():
    cards = load_medalpaca(str(MED))
    assert [r.id for r in cards] == ["medalpaca-0", "medalpaca-1", "medalpaca-2"]
    assert cards[1].question == "What is the first-line treatment for anaphylaxis?"
    assert cards[1].answer == "Intramuscular epinephrine."
    assert all(r.image is None and r.text is None and r.options == () and r.answer_type == "OPEN"
               for r in cards)
    slake = load_slake(str(MED))
    assert [r.id for r in slake] == ["slake-11934", "slake-11936"]  # the Chinese row is skipped
    assert [r.answer_type for r in slake] == ["OPEN", "CLOSED"]
    assert slake[0].image == str(MED.resolve() / "Slake1.0" / "imgs" / "xmlab102" / "source.jpg")
    assert_images_exist(slake)
    both = load_slake(str(MED), "test", english_only=False)
    assert [r.id for r in both] == ["slake-11934", "slake-11935", "slake-11936"]
    assert [r.id for r in load_slake(str(MED), "train")] == ["slake-0"]


def test_medvqa_splits():
    train = load_medvqa(str(MED), "train")
    assert [r.id.split("-")[0] for r in train] == ["vqarad"] * 3 + ["medalpaca"] * 3
    assert [r.id for r in load_medvqa(str(MED), "test")] == ["vqarad-2", "vqarad-4"]
    assert [r.id for r in load_medvqa(str(MED), "test_slake")] == ["slake-11934", "slake-11936"]
    raises(lambda: load_medvqa(str(MED), "val"), "'val'", "test_slake")
    raises(lambda: load_vqa_rad(str(MED), "dev"), "'dev'")
    raises(lambda: load_slake(str(MED), "dev"), "'dev'", "validate")


def test_medvqa_missing_files(tmp_path):
    raises(lambda: load_vqa_rad(str(tmp_path), "train"), "VQA_RAD Dataset Public.json",
           "not found", "osf.io")
    raises(lambda: load_medalpaca(str(tmp_path)), medvqa.MEDALPACA_FILE, "not found",
           "huggingface.co/datasets/medalpaca")
    raises(lambda: load_slake(str(tmp_path)), os.path.join("Slake1.0", "test.json"), "not found",
           "med-vqa.com/slake")


def test_medvqa_bad_records(tmp_path):
    root = copy(MED, tmp_path)
    rad = root / "VQA_RAD Dataset Public.json"
    data = json.loads(rad.read_text())

    rad.write_text("[{")
    raises(lambda: load_vqa_rad(str(root), "train"), str(rad), "not valid JSON")
    rad.write_text(json.dumps({"qid": 0}))
    raises(lambda: load_vqa_rad(str(root), "train"), "JSON dict", "JSON list")

    broken = [dict(d) for d in data]
    del broken[1]["answer"]
    rad.write_text(json.dumps(broken))
    raises(lambda: load_vqa_rad(str(root), "train"), str(rad), "record 1", "'answer' is missing")

    broken = [dict(d) for d in data]
    broken[3]["answer_type"] = "OTHER"
    rad.write_text(json.dumps(broken))
    raises(lambda: load_vqa_rad(str(root), "train"), "record 3 (qid 3)", "answer_type 'OTHER'")

    broken = [dict(d) for d in data]
    broken[0]["answer"] = " "
    rad.write_text(json.dumps(broken))
    raises(lambda: load_vqa_rad(str(root), "train"), "record 0 (qid 0)", "empty answer")

    rad.write_text(json.dumps(data))
    (root / "VQA_RAD Image Folder" / "synpic29265.jpg").unlink()
    raises(lambda: load_vqa_rad(str(root), "train"), "record 1 (qid 1)", "synpic29265.jpg",
           "does not exist", "VQA_RAD Image Folder")

    slake = root / "Slake1.0" / "test.json"
    items = json.loads(slake.read_text())
    items[1]["q_lang"] = "fr"
    slake.write_text(json.dumps(items))
    raises(lambda: load_slake(str(root)), str(slake), "record 1", "q_lang 'fr'")
    items[1]["q_lang"] = "zh"
    slake.write_text(json.dumps(items))
    shutil.rmtree(root / "Slake1.0" / "imgs" / "xmlab103")
    raises(lambda: load_slake(str(root)), "record 2 (qid 11936)", "xmlab103/source.jpg",
           "does not exist")


def test_medalpaca_empty_cards_are_skipped_with_a_warning(tmp_path):
    root = copy(MED, tmp_path)
    path = root / medvqa.MEDALPACA_FILE
    cards = json.loads(path.read_text())
    cards.insert(1, {"instruction": "Answer this question truthfully", "input": "Q?", "output": ""})
    path.write_text(json.dumps(cards))
    with pytest.warns(UserWarning, match="skipped 1 flashcard"):
        records = load_medalpaca(str(root))
    assert [r.id for r in records] == ["medalpaca-0", "medalpaca-2", "medalpaca-3"]
    cards[1] = {"instruction": "Answer this question truthfully", "input": "Q?"}
    path.write_text(json.dumps(cards))
    raises(lambda: load_medalpaca(str(root)), "record 1", "'output' is missing")


# ----------------------------------------------------------------------------- FedMLLM folders

def test_fedmllm_minicpmv_clients():
    clients = load_fedmllm_clients(str(MINICPMV))
    assert [len(c) for c in clients] == [4, 3, 1]
    both, text_only, image_only, neither = clients[0]
    for r in clients[0]:
        assert r.question == "Is the content hateful?"  # template, options, modality phrase gone
        assert r.options == ("not-hateful", "hateful")
    assert [r.answer for r in clients[0]] == ["not-hateful", "hateful", "not-hateful", "hateful"]
    assert both.id == "42953" and both.text == "its their character not their color that matters"
    assert both.image == str(MINICPMV.resolve() / "images" / "42953.png")
    assert text_only.image is None and text_only.text == "placeholder hateful caption"
    assert image_only.image is not None and image_only.text is None
    assert neither.image is None and neither.text is None
    crisis, vqa, text_vqa = clients[1]
    assert crisis.options == crisismmd.OPTIONS and crisis.answer == "infrastructure and utility damage"
    assert crisis.question == "What is the humanitarian category?"
    assert crisis.text == "RT @Gizmodo: Wildfires raging through Northern California"
    assert vqa.question == "Are regions of the brain infarcted?" and vqa.answer == "Yes"
    assert vqa.options == () and vqa.image is not None
    assert text_vqa.image is None and text_vqa.options == ()
    (no_key,) = clients[2]
    assert no_key.id == "9" and no_key.image is None  # "image" absent
    assert_images_exist([r for c in clients for r in c])


def test_fedmllm_records_match_the_direct_loaders():
    """A model trained on FedMLLM client folders is scored on the published test files."""
    hm = load_hateful_memes(str(HM), "test")[0]
    cm = load_crisismmd(str(CRISIS), "test")[0]
    clients = load_fedmllm_clients(str(MINICPMV))
    assert (clients[0][0].question, clients[0][0].options) == (hm.question, hm.options)
    assert (clients[1][0].question, clients[1][0].options) == (cm.question, cm.options)


def test_fedmllm_llava_clients_and_test_file():
    clients = load_fedmllm_clients(str(LLAVA), image_root=str(LLAVA_IMAGES))
    assert [len(c) for c in clients] == [4, 1]
    inline, lines, open_ended, unmatched = clients[0]
    assert (inline.question, inline.options, inline.answer) == ("Which animal is shown?",
                                                               ("cat", "dog"), "dog")
    assert inline.image == str(LLAVA_IMAGES.resolve() / "cat.png")
    assert (lines.question, lines.options, lines.answer) == ("What colour is the square?",
                                                            ("red", "green", "blue"), "red")
    assert (open_ended.question, open_ended.options) == ("Describe the image.", ())
    assert "<image>" not in open_ended.question
    assert (unmatched.options, unmatched.answer) == ((), "maybe")  # answer not an option
    assert unmatched.question == "Pick one: (A) yes (B) no"
    (header,) = clients[1]
    assert (header.question, header.options, header.answer) == ("Is there an animal?",
                                                                ("no", "yes"), "yes")
    for source in (str(LLAVA), str(LLAVA / "test.json")):
        test = load_fedmllm_test(source, image_root=str(LLAVA_IMAGES))
        assert [(r.id, r.answer, r.options) for r in test] == [("t1", "cat", ("cat", "dog")),
                                                               ("t2", "4", ())]
    raises(lambda: load_fedmllm_test(str(MINICPMV)), "test.json", "not found",
           "published test files")
    # Without image_root, names are taken relative to the JSON file's folder.
    raises(lambda: load_fedmllm_clients(str(LLAVA)), "record 0 (id q1)", "'cat.png'",
           "does not exist", "image_root")


def test_parse_turns_and_match_answer():
    assert match_answer("(B) hateful", ("not-hateful", "hateful")) == "hateful"
    assert match_answer("B", ("x", "y")) == "y"
    assert match_answer("B.", ("x", "y")) == "y"
    assert match_answer("b", ("x", "y")) is None
    assert match_answer("Y", ("x", "y")) == "y"  # by text, case-insensitive
    assert match_answer("(B) x", ("x", "y")) is None  # letter and text disagree
    assert match_answer("(C)", ("x", "y")) is None
    assert match_answer("Abdomen", ("a", "b")) is None
    assert match_answer("not_humanitarian", ("affected individuals", "not humanitarian")) \
        == "not humanitarian"
    q, text, options, answer = parse_turns("<image>\nWhat is it?\nA) cat\nB) dog\nC) cow", "C")
    assert (q, text, options, answer) == ("What is it?", None, ("cat", "dog", "cow"), "cow")
    q, _, options, answer = parse_turns("<image>\nWhat is it?", "A cat.")
    assert (q, options, answer) == ("What is it?", (), "A cat.")
    # Repeated option texts cannot give a class label: open-ended.
    assert parse_turns("Q? (A) x (B) x", "A")[2] == ()


def test_fedmllm_folder_errors(tmp_path):
    raises(lambda: load_fedmllm_clients(str(tmp_path / "nope")), "not found", "gen_data_")
    empty = tmp_path / "empty"
    empty.mkdir()
    raises(lambda: load_fedmllm_clients(str(empty)), "no client_{i}.json", "gen_data_")

    gap = copy(MINICPMV, tmp_path)
    (gap / "client_1.json").unlink()
    raises(lambda: load_fedmllm_clients(str(gap)), "client_1.json is missing", "renumber")
    shutil.copy(gap / "client_0.json", gap / "client_1.json")
    shutil.copy(gap / "client_0.json", gap / "client_01.json")
    raises(lambda: load_fedmllm_clients(str(gap)), "client_01.json", "client_1.json",
           "both name client 1")


def _client_dir(tmp_path: Path, items) -> Path:
    folder = tmp_path / "clients"
    folder.mkdir(exist_ok=True)
    (folder / "client_0.json").write_text(json.dumps(items))
    return folder


def _item(**kw):
    item = {"id": 1, "image": None, "conversations": [
        {"role": "user", "content": "What is it?"}, {"role": "assistant", "content": "a cat"}]}
    item.update(kw)
    return item


def test_fedmllm_bad_records(tmp_path):
    folder = _client_dir(tmp_path, [])
    path = folder / "client_0.json"
    load = lambda: load_fedmllm_clients(str(folder))  # noqa: E731

    path.write_text('{"id": 1, "img": "img/1.png", "label": 0, "text": "x"}\n'
                    '{"id": 2, "img": "img/2.png", "label": 1, "text": "y"}\n')
    raises(load, str(path), "not valid JSON", "JSON Lines", "minicpmv_data")
    path.write_text("{}")
    raises(load, "JSON dict", "JSON list")

    turns = [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A"}] * 2
    _client_dir(tmp_path, [_item(conversations=turns)])
    raises(load, "record 0", "exactly two turns", "got 4")
    _client_dir(tmp_path, [_item(conversations=[{"role": "assistant", "content": "A"},
                                                {"role": "user", "content": "Q?"}])])
    raises(load, "record 0", "('assistant', 'user')")
    _client_dir(tmp_path, [_item(conversations=[{"speaker": "user", "text": "Q?"},
                                                {"speaker": "assistant", "text": "A"}])])
    raises(load, "record 0", "'role', 'content'", "'from', 'value'")
    _client_dir(tmp_path, [_item(), {"id": 2}])
    raises(load, "record 1", "'conversations'")
    _client_dir(tmp_path, [_item(image={"<image_00>": "a.png", "<image_01>": "b.png"})])
    raises(load, "record 0 (id 1)", "multi-image")
    _client_dir(tmp_path, [_item(image="/path/to/training_data/data/hateful_memes/img/1.png")])
    raises(load, "record 0 (id 1)", "does not exist", "/path/to/training_data/")
    _client_dir(tmp_path, [_item(conversations=[{"role": "user", "content": "Q?"},
                                                {"role": "assistant", "content": "  "}])])
    raises(load, str(path), "record 0 (id 1)", "empty answer")


def test_fedmllm_absolute_image_path_and_default_ids(tmp_path):
    absolute = str((LLAVA_IMAGES / "cat.png").resolve())
    item = _item(image=absolute)
    del item["id"]
    folder = _client_dir(tmp_path, [item])
    (record,) = load_fedmllm_clients(str(folder), image_root="/elsewhere")[0]
    assert record.image == absolute and record.id == "client_0-0"
    assert record.question == "What is it?" and record.options == ()


def test_fedmllm_aug_files_modality_agnostic_wording(tmp_path):
    """The reference's `_aug` client files (gen_data_hateful_mix_aug.py, gen_data_crisismmd_
    missing_aug.py: strategy 1): the instruction and the question carry ", without considering
    the modality" whatever the sample holds. Read as the plain files are: the meme text is the
    record's text and the question is bare."""
    aug = ", without considering the modality"
    close = ("Answer with the option's letter from the given choices directly and only give the best "
             "option. The best answer is: ")
    pre = f"Select the best answer to the following multiple-choice question{aug}."
    meme = f"Is the content hateful{aug}?\nOptions:\n(A) not-hateful\n(B) hateful\n{close}"
    crisis_options = "".join(f"\n({chr(65 + i)}) {c}" for i, c in enumerate(crisismmd.CATEGORIES))
    items = [
        {"id": 42953, "image": "images/42953.png", "conversations": [
            {"role": "user", "content": f"<image>\n{pre}\nits their character\n{meme}"},
            {"role": "assistant", "content": "(A) not-hateful"}]},
        {"id": 1, "image": None, "conversations": [
            {"role": "user", "content": f"{pre}\nplaceholder caption\n{meme}"},
            {"role": "assistant", "content": "(B) hateful"}]},
        {"id": 2, "image": "images/42953.png", "conversations": [
            {"role": "user", "content": f"<image>\n{pre}\n{meme}"},
            {"role": "assistant", "content": "(B) hateful"}]},
        {"id": 3, "image": None, "conversations": [
            {"role": "user", "content": f"{pre}\n{meme}"},
            {"role": "assistant", "content": "(A) not-hateful"}]},
        {"id": "917791044158185473_0", "image": "images/42953.png", "conversations": [
            {"role": "user", "content": f"<image>\n{pre}\nWildfires raging\nWhat is the humanitarian "
                                        f"category{aug}?\nOptions:{crisis_options}\n{close}"},
            {"role": "assistant", "content": "(B) infrastructure_and_utility_damage"}]},
    ]
    folder = tmp_path / "aug"
    folder.mkdir()
    shutil.copytree(MINICPMV / "images", folder / "images")
    (folder / "client_0.json").write_text(json.dumps(items, indent=4))
    (records,) = load_fedmllm_clients(str(folder))
    both, text_only, image_only, neither, crisis = records
    for r in (both, text_only, image_only, neither):
        assert r.question == "Is the content hateful?" and r.options == ("not-hateful", "hateful")
    assert (both.text, text_only.text, image_only.text, neither.text) == (
        "its their character", "placeholder caption", None, None)
    assert [r.answer for r in records[:4]] == ["not-hateful", "hateful", "hateful", "not-hateful"]
    assert crisis.question == "What is the humanitarian category?" and crisis.text == "Wildfires raging"
    assert crisis.options == crisismmd.OPTIONS and crisis.answer == "infrastructure and utility damage"
