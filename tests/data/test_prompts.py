"""Prompt wording per modality combination, and the modality-agnostic strategy."""

import pytest

from hpc_fed.data.prompts import AGNOSTIC, format_options, option_letters, render_question
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


# ----------------------------------------------------------------------------- the reference's template
# Strings copied from github.com/1xbq1/FedMLLM: data_gen/gen_data_hateful_missing.py (the four
# modality branches), gen_data_crisismmd.py, gen_data_hateful_mix_aug.py (a0 = 'not-hateful',
# a1 = 'hateful', aug = ', without considering the modality'); the leading "<image>\n" is our
# image slot, so it is left out here.
CLOSE = ("Answer with the option\'s letter from the given choices directly and only give the best "
         "option. The best answer is: ")
MEME = dict(id="m", question="Is the content hateful?", answer="hateful", options=("not-hateful", "hateful"))
TEXT = "its their character not their color that matters"


SELECT = "Select the best answer to the following multiple-choice question"
OPTS = "Options:\n(A) not-hateful\n(B) hateful"


@pytest.mark.parametrize("image,text,expected", [
    ("a.png", TEXT, f"{SELECT} based on the text and image.\n{TEXT}\n"
     f"Is the content hateful based on the text and image?\n{OPTS}\n{CLOSE}"),
    (None, TEXT, f"{SELECT} based on the text.\n{TEXT}\n"
     f"Is the content hateful based on the text?\n{OPTS}\n{CLOSE}"),
    ("a.png", None, f"{SELECT} based on the image.\n"
     f"Is the content hateful based on the image?\n{OPTS}\n{CLOSE}"),
    (None, None, f"{SELECT}.\nIs the content hateful?\n{OPTS}\n{CLOSE}"),
])
def test_fedmllm_prompt_is_the_reference_text_word_for_word(image, text, expected):
    from hpc_fed.data.prompts import target, user_text

    r = Record(**MEME, image=image, text=text)
    assert user_text(r, "fedmllm") == expected
    assert target(r, "fedmllm") == "(B) hateful"
    assert target(Record(**{**MEME, "answer": "not-hateful"}), "fedmllm") == "(A) not-hateful"


def test_fedmllm_agnostic_is_the_reference_aug_text_for_every_combination():
    from hpc_fed.data.prompts import user_text

    aug = ", without considering the modality"
    r = Record(**MEME, image="a.png", text=TEXT)
    assert user_text(r, "fedmllm_agnostic") == (
        f"Select the best answer to the following multiple-choice question{aug}.\n{TEXT}\n"
        f"Is the content hateful{aug}?\nOptions:\n(A) not-hateful\n(B) hateful\n{CLOSE}")
    image_only = user_text(Record(**MEME, image="a.png"), "fedmllm_agnostic")
    assert image_only == (f"Select the best answer to the following multiple-choice question{aug}.\n"
                          f"Is the content hateful{aug}?\nOptions:\n(A) not-hateful\n(B) hateful\n{CLOSE}")


def test_fedmllm_crisismmd_and_open_ended_records():
    from hpc_fed.data.datasets.crisismmd import OPTIONS, QUESTION
    from hpc_fed.data.prompts import target, user_text

    r = Record(id="c", question=QUESTION, answer=OPTIONS[7], options=OPTIONS, image="a.jpg", text="Fire")
    text = user_text(r, "fedmllm")
    # gen_data_crisismmd.py: "...question based on the text and image.\n{text}\nWhat is the
    # humanitarian category based on the image and text?\nOptions:\n(A) ...\n...(H) ..."
    assert text.startswith("Select the best answer to the following multiple-choice question based on "
                           "the text and image.\nFire\nWhat is the humanitarian category based on the "
                           "image and text?\nOptions:\n(A) affected_individuals\n")
    assert "\n(H) not_humanitarian\n" + CLOSE in text and target(r, "fedmllm") == "(H) not_humanitarian"
    # gen_data_medical_*.py: the bare question, the bare answer
    med = Record(id="v", question="is there a fracture?", answer="no", image="a.jpg")
    assert user_text(med, "fedmllm") == "is there a fracture?" and target(med, "fedmllm") == "no"


def test_fedmllm_trains_and_scores_the_lettered_options(processor):
    from hpc_fed.data.collate import IGNORE_INDEX, Collator

    collator = Collator(processor, "fedmllm")
    r = Record(**MEME, text="mean")
    batch = collator.train_batch([r])
    labels = batch["labels"][0][batch["labels"][0] != IGNORE_INDEX].tolist()
    assert labels == collator.answer_ids("(B) hateful", eos=True)
    _, plans = collator.score_batch([r])
    scored = [[tok for _, _, tok in option] for option in plans[0]]
    assert scored == [collator.answer_ids("(A) not-hateful", eos=False),
                      collator.answer_ids("(B) hateful", eos=False)]


def test_option_letters():
    assert option_letters(0) == []
    assert option_letters(3) == ["A", "B", "C"]
    assert option_letters(26)[-1] == "Z"
    with pytest.raises(ValueError):
        option_letters(27)
    with pytest.raises(ValueError):
        option_letters(-1)


def test_format_options():
    assert format_options(["not-hateful", "hateful"]) == "(A) not-hateful (B) hateful"
    assert format_options(["yes", "no", "maybe"]) == "(A) yes (B) no (C) maybe"
    assert format_options([]) == ""
