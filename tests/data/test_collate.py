"""Collation with the model's own processor: answer-only loss, images expanded, text-only rows."""

import torch

from hpc_fed.data.collate import IGNORE_INDEX, Collator
from hpc_fed.data.datasets.easyvqa import COLORS, load_easyvqa
from hpc_fed.data.records import Record


def _records():
    test = load_easyvqa("test")
    return test[:3]


def test_loss_is_masked_to_answer_tokens_and_images_expand(processor):
    col = Collator(processor)
    recs = _records()
    batch = col.train_batch(recs)
    image_id = processor.tokenizer.convert_tokens_to_ids("<image>")
    for i, r in enumerate(recs):
        labels = batch["labels"][i]
        supervised = labels[labels != IGNORE_INDEX].tolist()
        assert supervised == col.answer_ids(r.answer, eos=False) + [processor.tokenizer.eos_token_id]
        assert int((batch["input_ids"][i] == image_id).sum()) == 64  # (64 / 8)^2 patches
        # the supervised tokens are the last real tokens of the row
        n = int(batch["attention_mask"][i].sum())
        assert batch["input_ids"][i, n - len(supervised):n].tolist() == supervised
    assert batch["pixel_values"].shape == (3, 3, 64, 64)


def test_text_only_records_mix_with_image_records(processor):
    col = Collator(processor)
    img = _records()[0]
    txt = Record(id="t", question="what color is the shape?", answer="red", options=COLORS,
                 text="the shape is red")
    batch = col.train_batch([txt, img])
    assert batch["pixel_values"].shape[0] == 1
    image_id = processor.tokenizer.convert_tokens_to_ids("<image>")
    assert int((batch["input_ids"][0] == image_id).sum()) == 0


def test_image_anchor_row_runs_the_image_path_without_changing_the_loss(tiny_model_dir, processor):
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir).eval()
    col = Collator(processor)
    texts = [Record(id=f"t{i}", question="what color is the shape?", answer=a, options=COLORS,
                    text=f"the shape is {a}") for i, a in enumerate(("red", "blue"))]
    plain, anchored = col.train_batch(texts), col.train_batch(texts, image_anchor=True)
    assert "pixel_values" not in plain and anchored["pixel_values"].shape[0] == 1
    assert anchored["input_ids"].shape[0] == 3 and bool((anchored["labels"][2] == IGNORE_INDEX).all())
    with torch.no_grad():
        a, b = model(**plain).loss, model(**anchored).loss
    assert torch.allclose(a, b, atol=1e-6)
    img = _records()[0]  # a batch that has an image needs no anchor
    assert col.train_batch([texts[0], img], image_anchor=True)["input_ids"].shape[0] == 2


def test_every_processor_output_reaches_the_model_row_for_row():
    """LLaVA-NeXT's processor adds `image_sizes` (one row per image): training passes it as the
    processor made it, and scoring with options that need two rows per record repeats each
    record's images and sizes for both rows, in the processor's own layout."""
    from tiny_vlms import llava_next_processor

    col = Collator(llava_next_processor())
    img, other = _records()[:2]
    txt = Record(id="t", question="what color is the shape?", answer="red", options=COLORS, text="red")
    train = col.train_batch([img, txt, other])
    assert set(train) == {"input_ids", "attention_mask", "labels", "pixel_values", "image_sizes"}
    assert train["image_sizes"].shape == (2, 2) and train["pixel_values"].shape[0] == 2
    two_rows = Record(id="m", question=img.question, answer="red", options=("red", "very red"),
                      image=img.image)
    batch, plans = col.score_batch([two_rows, txt])
    assert batch["input_ids"].shape[0] == 3  # "red" and "very ..." rows of the first, one of the second
    assert batch["image_sizes"].shape == (2, 2) and batch["pixel_values"].shape[0] == 2
    assert torch.equal(batch["pixel_values"][0], batch["pixel_values"][1])
    assert [row for row, _, _ in plans[0][1]] == [1, 1]  # "very red" is scored on the second row


def test_image_cache_is_bounded_in_bytes_and_keeps_the_recent(tmp_path):
    from PIL import Image

    from hpc_fed.data.images import ImageCache

    paths = []
    for i in range(5):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (100, 100), (i, 0, 0)).save(path)  # 40,000 bytes decoded (RGBX)
        paths.append(str(path))
    cache = ImageCache(max_bytes=90_000)  # room for two
    for p in paths:
        cache.get(p)
    assert cache.bytes == 80_000 and cache.misses == 5
    assert cache.get(paths[-1]).getpixel((0, 0)) == (4, 0, 0) and cache.hits == 1
    cache.get(paths[0])  # evicted long ago: decoded again
    assert cache.misses == 6 and cache.bytes <= 90_000
    none = ImageCache(max_bytes=0)  # data.image_cache_mb=0 keeps nothing
    none.get(paths[0])
    assert none.bytes == 0 and not none._images
