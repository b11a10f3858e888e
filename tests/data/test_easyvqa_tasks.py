"""The offline tasks derived from easy-VQA: balance, modality roles, reproducibility."""

from collections import Counter, defaultdict

import pytest

from hpc_fed.data.datasets.easyvqa import PREFIT_EVERY
from hpc_fed.data.datasets.easyvqa_tasks import (
    DARK,
    HINT_ACCURACY,
    REMARKS,
    image_attributes,
    load_claims,
    load_mc,
    load_memes,
    stated_attributes,
)
from hpc_fed.tiny.prefit import image_number


@pytest.fixture(scope="module")
def claims():
    return load_claims("train")


def test_claims_one_true_one_false_per_image_and_no_prefit_image(claims):
    per_image = defaultdict(list)
    for r in claims:
        per_image[image_number(r.image)].append(r)
    assert all(sorted(x.answer for x in rs) == ["no", "yes"] for rs in per_image.values())
    assert all(img % PREFIT_EVERY != 0 for img in per_image)
    assert len({r.id for r in claims}) == len(claims)
    assert {r.options for r in claims} == {("no", "yes")}  # positive class last


def test_claim_text_alone_does_not_give_the_answer(claims):
    """Every claim wording is about as often true as false: the text needs the image."""
    by_text = defaultdict(Counter)
    for r in claims:
        by_text[r.text][r.answer] += 1
    # Best possible accuracy from the text alone (majority answer per claim string).
    text_only = sum(max(c.values()) for c in by_text.values()) / len(claims)
    assert text_only < 0.6
    # ... and the image alone neither: each image has one true and one false claim.


def test_claims_are_true_exactly_when_the_image_matches(claims):
    attrs = image_attributes("train")
    for r in claims[:400]:
        shape, color = attrs[image_number(r.image)]
        words = r.text.rstrip(".").split()
        named_colors = [w for w in words if w in ("red", "green", "blue", "black", "gray", "teal",
                                                  "brown", "yellow")]
        named_shapes = [w for w in words if w in ("circle", "rectangle", "triangle")]
        true = all(c == color for c in named_colors) and all(s == shape for s in named_shapes)
        assert (r.answer == "yes") == true, r


def test_mc_hint_is_right_at_the_stated_rate_and_tasks_reproduce_by_seed():
    mc = load_mc("test")
    right = sum(r.text == f"someone says it is {r.answer}." for r in mc) / len(mc)
    assert abs(right - HINT_ACCURACY) < 0.03
    assert len({o for r in mc for o in r.options}) == 11
    assert load_mc("test", seed=0) == mc and load_mc("test", seed=1) != mc
    assert load_claims("test", seed=3) == load_claims("test", seed=3)


def _auc_of(scores, labels):
    from hpc_fed.eval.metrics import roc_auc

    return roc_auc(scores, labels)


def test_memes_positive_needs_rude_text_and_dark_image_each_alone_caps_auc():
    memes = load_memes("train")
    _, colors = stated_attributes("train")
    labels = [r.label for r in memes]
    rude = [float(r.text in REMARKS["rude"]) for r in memes]
    dark = [float(next(iter(colors[image_number(r.image)])) in DARK) for r in memes]
    assert all(y == (t == 1.0 and d == 1.0) for y, t, d in zip(labels, rude, dark))
    assert abs(sum(rude) / len(memes) - 0.5) < 0.03 and 0.2 < sum(labels) / len(memes) < 0.3
    # The best score from one modality is the indicator itself: AUC ~5/6, not 1.
    assert 0.78 < _auc_of(rude, labels) < 0.88 and 0.78 < _auc_of(dark, labels) < 0.88
    assert _auc_of([t * d for t, d in zip(rude, dark)], labels) == 1.0
    assert all(img % PREFIT_EVERY != 0 for img in map(image_number, (r.image for r in memes)))
