"""The prompt wording per modality combination, and FedMLLM's modality-agnostic strategy.

`modality` (default) tells the model which modalities the sample holds ("answer based on the
image and the text.", "... the image.", "... the text.", nothing when it holds neither).
`modality_agnostic` is the paper's strategy 1 (prompt augmentation): one wording for every
combination, at training and at test time, so a client's prompt does not reveal its
modality pattern. `list_options` appends the options as "(A) x (B) y" (needed when a
generated reply should name a letter).
"""

from __future__ import annotations

from hpc_fed.data.records import Record
from hpc_fed.eval.answers import format_options, option_letters

STYLES = ("modality", "modality_agnostic")

PHRASES = {
    (True, True): "answer based on the image and the text.",
    (True, False): "answer based on the image.",
    (False, True): "answer based on the text.",
    (False, False): "",
}
AGNOSTIC = "answer based on the given input, without considering the modality."


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
