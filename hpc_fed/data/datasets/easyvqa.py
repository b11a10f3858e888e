"""easy-VQA (PyPI `easy-vqa`): 64x64 shape images, questions, 13 one-word answers.

Splits: `test` is easy-VQA's test set. easy-VQA's train images are divided by image id:
every `PREFIT_EVERY`-th image forms the `prefit` slice, used only to pre-fit the tiny base
model; the rest form `train`, the only slice the federated benchmark partitions. The two share
no image.
"""

from __future__ import annotations

from hpc_fed.data.records import Record
from hpc_fed.errors import DataFormatError

PREFIT_EVERY = 5
SHAPES = ("circle", "rectangle", "triangle")
COLORS = ("red", "green", "blue", "black", "gray", "teal", "brown", "yellow")
YES_NO = ("yes", "no")
SPLITS = ("prefit", "train", "test")


def options_for(answer: str) -> tuple[str, ...]:
    for group in (SHAPES, COLORS, YES_NO):
        if answer in group:
            return group
    raise DataFormatError(f"easy-VQA answer {answer!r} is not a known shape, colour or yes/no")


def _raw(split: str):
    """(questions, answers, image ids), {image id: path} of easy-VQA's file behind `split`."""
    import easy_vqa

    if split not in SPLITS:
        raise DataFormatError(f"easy-VQA split {split!r} is unknown; choose one of {SPLITS}")
    if split == "test":
        return easy_vqa.get_test_questions(), easy_vqa.get_test_image_paths()
    return easy_vqa.get_train_questions(), easy_vqa.get_train_image_paths()


def load_easyvqa(split: str, open_only: bool = False) -> list[Record]:
    """Records of one split, in a fixed order. `open_only` keeps shape/colour questions."""
    (questions, answers, image_ids), paths = _raw(split)
    records = []
    for i, (q, a, img) in enumerate(zip(questions, answers, image_ids)):
        if split != "test" and (img % PREFIT_EVERY == 0) != (split == "prefit"):
            continue
        if open_only and a in YES_NO:
            continue
        if img not in paths:
            raise DataFormatError(f"easy-VQA {split}: question {i} names image {img}, which is not "
                                  "shipped; reinstall the easy-vqa package")
        records.append(Record(id=f"{split}-{i}", question=q, answer=a, options=options_for(a),
                              image=paths[img]))
    return records

