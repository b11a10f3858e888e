"""The prompt wording per modality combination, and FedMLLM's modality-agnostic strategy.

`modality` (default) tells the model which modalities the sample holds ("answer based on the
image and the text.", "... the image.", "... the text.", nothing when it holds neither).
`modality_agnostic` is the paper's strategy 1 (prompt augmentation): one wording for every
combination, at training and at test time, so a client's prompt does not reveal its
modality pattern. `list_options` appends the options as "(A) x (B) y" (needed when a
generated reply should name a letter).

`fedmllm` and `fedmllm_agnostic` reproduce the reference code's prompts (github.com/1xbq1/
FedMLLM, data_gen/gen_data_hateful*.py, gen_data_crisismmd*.py, their _aug variants and
eval_*.py) word for word: an instruction line naming the modalities present ("Select the best
answer to the following multiple-choice question based on the text and image."), the sample's
text, the question with the same phrase ("Is the content hateful based on the text and
image?"), "Options:" with one "(A) x" per line, and the closing "Answer with the option's letter
from the given choices directly and only give the best option. The best answer is: " (its
trailing space included); the answer target is the option with its letter ("(B) hateful"), and
option scoring scores those lettered options. The agnostic variant is the reference's strategy
1 (its `_aug` files): ", without considering the modality" in both lines, whatever the sample
holds. Open-ended records (medical VQA) are the bare question and answer there, as in the
reference's gen_data_medical_*.py. The offline tiny model's word-level vocabulary does not hold
these words (they read as unknown tokens there): use them with real models; the tiny model's
default stays `modality`.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from functools import lru_cache

from hpc_fed.data.records import Record

STYLES = ("modality", "modality_agnostic", "fedmllm", "fedmllm_agnostic")

PHRASES = {
    (True, True): "answer based on the image and the text.",
    (True, False): "answer based on the image.",
    (False, True): "answer based on the text.",
    (False, False): "",
}
AGNOSTIC = "answer based on the given input, without considering the modality."

_MAX_OPTIONS = len(string.ascii_uppercase)


def option_letters(n: int) -> list[str]:
    """The first n option letters: ["A", "B", ...]; n must be in 0..26."""
    if not 0 <= n <= _MAX_OPTIONS:
        raise ValueError(f"option_letters: n={n} outside 0..{_MAX_OPTIONS}")
    return list(string.ascii_uppercase[:n])


def format_options(options: Sequence[str]) -> str:
    """Options the way prompts list them: "(A) not-hateful (B) hateful"."""
    return " ".join(f"({letter}) {text}" for letter, text in zip(option_letters(len(options)), options))


# --- the reference code's template (fedmllm, fedmllm_agnostic) ---------------------------------
INSTRUCTION = "Select the best answer to the following multiple-choice question"
CLOSING = ("Answer with the option's letter from the given choices directly and only give the "
           "best option. The best answer is: ")
REFERENCE_PHRASES = {  # (image, text) -> the phrase of the instruction line and of the question
    (True, True): " based on the text and image",
    (True, False): " based on the image",
    (False, True): " based on the text",
    (False, False): "",
}
REFERENCE_AGNOSTIC = ", without considering the modality"
# the reference's CrisisMMD scripts word the question's phrase the other way round
# (gen_data_crisismmd*.py: "What is the humanitarian category based on the image and text?")
QUESTION_BOTH_PHRASE = {"What is the humanitarian category?": " based on the image and text"}


@lru_cache(maxsize=1)
def _reference_labels() -> dict[str, str]:
    """CrisisMMD's option text -> its label as the reference writes it (built once, not per
    option of every batch)."""
    from hpc_fed.data.datasets.crisismmd import LABEL_TO_OPTION

    return {text: label for label, text in LABEL_TO_OPTION.items()}


def _reference_spelling(option: str) -> str:
    """An option as the reference code writes it: CrisisMMD's categories keep their underscores
    there ("not_humanitarian"; hpc_fed's records spell them with spaces)."""
    return _reference_labels().get(option, option)


def lettered(options) -> list[str]:
    """The options as the reference's prompts and targets spell them: "(A) not-hateful"."""
    return [f"({letter}) {_reference_spelling(text)}"
            for letter, text in zip(option_letters(len(options)), options)]


def reference_text(record: Record, agnostic: bool) -> str:
    """The reference code's user turn after the image slot (see the module doc)."""
    if not record.options:
        return record.question
    present = (record.image is not None, record.text is not None)
    phrase = REFERENCE_AGNOSTIC if agnostic else REFERENCE_PHRASES[present]
    question_phrase = phrase
    if not agnostic and present == (True, True):
        question_phrase = QUESTION_BOTH_PHRASE.get(record.question, phrase)
    question = record.question
    if question_phrase:
        question = question.rstrip("?").rstrip() + question_phrase + "?"
    lines = [INSTRUCTION + phrase + "."]
    if record.text is not None:
        lines.append(record.text)
    lines += [question, "Options:", *lettered(record.options), CLOSING]
    return "\n".join(lines)


def user_text(record: Record, style: str = "modality", list_options: bool = False) -> str:
    """The text of the user turn (after the image slot, if any)."""
    if style in ("fedmllm", "fedmllm_agnostic"):
        return reference_text(record, agnostic=style == "fedmllm_agnostic")
    question = render_question(record, style, list_options)
    return question if record.text is None else f"{record.text}\n{question}"


def targets(record: Record, style: str = "modality") -> list[str]:
    """The reply strings the options are trained and scored as (the options themselves, or for
    the reference's template, each with its letter)."""
    return lettered(record.options) if style in ("fedmllm", "fedmllm_agnostic") else list(record.options)


def target(record: Record, style: str = "modality") -> str:
    """The reply a record is trained on."""
    return targets(record, style)[record.options.index(record.answer)] if record.options else record.answer


def render_question(record: Record, style: str = "modality", list_options: bool = False) -> str:
    """The question line of the user turn (the sample's text, if any, precedes it)."""
    if style == "modality":
        phrase = PHRASES[(record.image is not None, record.text is not None)]
    elif style == "modality_agnostic":
        phrase = AGNOSTIC
    else:
        from hpc_fed.errors import ConfigError

        raise ConfigError(f"data.prompt ({style!r}) is unknown; choose one of {STYLES}")
    parts = [record.question]
    if list_options and record.options:
        parts.append("options: " + format_options(record.options))
    if phrase:
        parts.append(phrase)
    return " ".join(parts)


# Words the offline tiny model's tokenizer must know (it is word-level).
VOCABULARY_TEXT = " ".join([*PHRASES.values(), AGNOSTIC, "options:",
                            " ".join(option_letters(26)).lower()])
