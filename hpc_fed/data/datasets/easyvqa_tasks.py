"""Three offline tasks derived from easy-VQA, standing in for the paper's datasets.

memes (Hateful Memes' role, binary; the offline benchmark's binary task): like a hateful meme,
a sample is positive only when text and image together make it so. The text is a remark, rude
("what an ugly shape.") or kind ("what a nice shape."), the image a shape; the question asks
whether the text is rude about a dark shape (black, gray, brown or blue). Positive = rude AND
dark (about a quarter). Each modality alone carries evidence (rude text or dark image: half
positive; otherwise none) but caps ROC-AUC at about 5/6 (accuracy at the 3/4 majority rate);
only both reach 1.0. Unlike `claims`, each
modality has first-order signal, so it is learnable by a tiny model. Positive class "yes" (last).

claims (binary, for real MLLMs): the sample's text is a claim about the picture
("there is a red shape.", "the image contains a circle.", "there is a red circle."), the
question asks whether the claim is true for the image. Each image gives one true and one false
claim of the same template, so the text alone says nothing (every claim string is about as often
true as false) and the image alone says nothing: only both together answer it. Options
(no, yes); positive class "yes" (last). Headline metric ROC-AUC. This is an XOR of the two
modalities, which gives gradient descent no first-order signal: the offline tiny model does not
learn it (measured: 900 full-weight steps of 32 -> test AUC 0.50; colour-only claims, 1,500
steps at lr 3e-3 -> 0.45-0.55), hence `memes` for the offline benchmark.

mc (CrisisMMD's role, multi-class): easy-VQA's open shape / colour questions (11 classes); the
sample's text is a witness's hint ("someone says it is blue.") that names the right answer with
probability HINT_ACCURACY and a wrong option otherwise, so the text helps, the image helps
(colours more than shapes for the tiny model) and both help most. Headline metric macro-F1.

Image attributes are read from easy-VQA's own questions: a shape question's answer and any
colour it names, a colour question's answer and any shape it names. Images whose shape or
colour is never stated (about a fifth) are left out of `claims`. Both tasks use the same
`prefit` / `train` / `test` image split as easy-VQA (hpc_fed/data/datasets/easyvqa.py).
"""

from __future__ import annotations

import re

import numpy as np

from hpc_fed.data.datasets.easyvqa import COLORS, PREFIT_EVERY, SHAPES, _raw, load_easyvqa
from hpc_fed.data.records import Record
from hpc_fed.errors import DataFormatError

HINT_ACCURACY = 0.6
MEMES_QUESTION = "is the text rude about a dark shape?"
DARK = ("black", "gray", "brown", "blue")
REMARKS = {"rude": ("what an ugly shape.", "this shape is awful.", "i hate this shape."),
           "kind": ("what a nice shape.", "this shape is lovely.", "i like this shape.")}
CLAIM_QUESTION = "is the text true for the image?"
CLAIM_TEMPLATES = ("there is a {color} shape.", "the image contains a {shape}.",
                   "there is a {color} {shape}.")
HINT_TEMPLATE = "someone says it is {answer}."
NO_YES = ("no", "yes")


def stated_attributes(split: str) -> tuple[dict[int, set], dict[int, set]]:
    """image id -> stated shapes, image id -> stated colours (each set has one element)."""
    (questions, answers, image_ids), _ = _raw(split)
    shape: dict[int, set] = {}
    color: dict[int, set] = {}
    for q, a, img in zip(questions, answers, image_ids):
        words = re.findall(r"[a-z]+", q.lower())
        if a in SHAPES:
            shape.setdefault(img, set()).add(a)
            color.setdefault(img, set()).update(w for w in words if w in COLORS)
        elif a in COLORS:
            color.setdefault(img, set()).add(a)
            shape.setdefault(img, set()).update(w for w in words if w in SHAPES)
    for img in set(shape) | set(color):
        if len(shape.get(img, ())) > 1 or len(color.get(img, ())) > 1:
            raise DataFormatError(f"easy-VQA image {img} has conflicting attributes "
                                  f"{shape.get(img)} / {color.get(img)}; reinstall the easy-vqa package")
    return shape, color


def image_attributes(split: str) -> dict[int, tuple[str, str]]:
    """image id -> (shape, colour) for the images of `split` whose both attributes are stated."""
    shape, color = stated_attributes(split)
    out = {}
    for img in sorted(set(shape) & set(color)):
        if shape[img] and color[img]:
            out[img] = (next(iter(shape[img])), next(iter(color[img])))
    return out


def _in_split(img: int, split: str) -> bool:
    return split == "test" or (img % PREFIT_EVERY == 0) == (split == "prefit")


def _claim(template: str, shape: str, color: str) -> str:
    return template.format(shape=shape, color=color)


def load_claims(split: str, seed: int = 0) -> list[Record]:
    """One true and one false claim per image (same template), in image order."""
    _, paths = _raw(split)
    records = []
    for img, (shape, color) in image_attributes(split).items():
        if not _in_split(img, split):
            continue
        rng = np.random.default_rng([seed, img, 7])
        t = int(rng.integers(len(CLAIM_TEMPLATES)))
        template = CLAIM_TEMPLATES[t]
        false_shape, false_color = shape, color
        change_shape = t == 1 or (t == 2 and rng.random() < 0.5)
        if change_shape:
            false_shape = str(rng.choice([s for s in SHAPES if s != shape]))
        else:
            false_color = str(rng.choice([c for c in COLORS if c != color]))
        pair = [(_claim(template, shape, color), "yes"), (_claim(template, false_shape, false_color), "no")]
        if rng.random() < 0.5:
            pair.reverse()
        for j, (claim, answer) in enumerate(pair):
            records.append(Record(id=f"claims-{split}-{img}-{j}", question=CLAIM_QUESTION,
                                  answer=answer, options=NO_YES, image=paths[img], text=claim))
    return records


def load_memes(split: str, seed: int = 0) -> list[Record]:
    """One record per image whose colour is stated: a rude or kind remark (1/2 each, seeded)."""
    _, paths = _raw(split)
    _, colors = stated_attributes(split)
    records = []
    for img in sorted(colors):
        if not colors[img] or not _in_split(img, split):
            continue
        rng = np.random.default_rng([seed, img, 13])
        tone = "rude" if rng.random() < 0.5 else "kind"
        remark = REMARKS[tone][int(rng.integers(len(REMARKS[tone])))]
        positive = tone == "rude" and next(iter(colors[img])) in DARK
        records.append(Record(id=f"memes-{split}-{img}", question=MEMES_QUESTION,
                              answer=NO_YES[positive], options=NO_YES, image=paths[img], text=remark))
    return records


def load_mc(split: str, seed: int = 0) -> list[Record]:
    """easy-VQA's open questions with a hint text that is right with probability HINT_ACCURACY."""
    out = []
    for r in load_easyvqa(split, open_only=True):
        rng = np.random.default_rng([seed, int(r.id.rsplit("-", 1)[1]), 11])
        hinted = r.answer if rng.random() < HINT_ACCURACY else str(
            rng.choice([o for o in r.options if o != r.answer]))
        out.append(Record(id=f"mc-{r.id}", question=r.question, answer=r.answer,
                          options=r.options, image=r.image,
                          text=HINT_TEMPLATE.format(answer=hinted)))
    return out


VOCABULARY_TEXT = " ".join([CLAIM_QUESTION, *CLAIM_TEMPLATES, HINT_TEMPLATE, *NO_YES,
                            MEMES_QUESTION, *(r for rs in REMARKS.values() for r in rs)])
