"""Prompt wording per modality combination, and the modality-agnostic strategy."""

import pytest

from hpc_fed.data.prompts import AGNOSTIC, render_question
from hpc_fed.data.records import Record
from hpc_fed.errors import ConfigError

BASE = dict(id="x", question="is this meme hateful?", answer="hateful",
            options=("not-hateful", "hateful"))


@pytest.mark.parametrize("image,text,expected", [
    ("a.png", "t", "is this meme hateful? answer based on the image and the text."),
    ("a.png", None, "is this meme hateful? answer based on the image."),
    (None, "t", "is this meme hateful? answer based on the text."),
    (None, None, "is this meme hateful?"),
])
def test_modality_phrase_names_what_the_sample_holds(image, text, expected):
    assert render_question(Record(**BASE, image=image, text=text)) == expected


def test_modality_agnostic_is_one_wording_for_every_combination():
    rendered = {render_question(Record(**BASE, image=i, text=t), "modality_agnostic")
                for i in ("a.png", None) for t in ("t", None)}
    assert rendered == {f"is this meme hateful? {AGNOSTIC}"}


def test_options_listed_with_letters_and_unknown_style_rejected():
    r = Record(**BASE, image="a.png")
    assert render_question(r, list_options=True) == (
        "is this meme hateful? options: (A) not-hateful (B) hateful answer based on the image.")
    with pytest.raises(ConfigError, match="data.prompt"):
        render_question(r, "agnostic")


def test_tiny_tokenizer_knows_every_prompt_word(processor):
    from hpc_fed.data.collate import user_message

    tok = processor.tokenizer
    claim = Record(id="c", question="is the text true for the image?", answer="yes",
                   options=("no", "yes"), image="a.png", text="there is a red circle.")
    for style in ("modality", "modality_agnostic"):
        text = user_message(claim, style, list_options=True)[0]["content"][-1]["text"]
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.unk_token_id not in ids, text
