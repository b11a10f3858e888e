"""Score generated replies: pure functions, no model and no torch.

Multiple choice (``parse_option``)
----------------------------------
Prompts list options as ``(A) not-hateful (B) hateful`` (``format_options`` in
hpc_fed/data/prompts.py). A reply is read in two independent ways, and the two readings are then
reconciled.

*Letter marks* (letters only in the range ``option_letters(len(options))`` name an option):

- a letter in brackets anywhere, not glued to a word: ``(B)``, ``[b]`` (``patient(s)`` is not one);
- a line that is a lone letter, optionally bracketed or followed by ``.``/``)``/``:``:
  ``B``, ``b.``, ``(B)``, ``B)`` -- on any line, so ``"B\\nBecause ..."`` reads as B;
- a letter opening the reply followed by ``)``, ``]``, ``.`` or ``:`` (``B. hateful``,
  ``B) hateful``), or by a spaced dash (``B - hateful``). A bare ``A`` followed by a space
  is *not* a mark there: ``A hateful meme`` uses the article;
- (weak) a letter right after an answer cue (``answer``, ``option``, ``choice``, optionally with
  ``is``/``would be``/``should be``; or ``is``, ``it's``, ``choose``, ``pick``, ``select``; then
  optionally ``:``/``=``/``-``): ``Answer: B``, ``The answer is B.``, ``option b``, ``I think
  it's B``. After a cue an upper-case letter needs only to end the word; a lower-case
  one must be followed by punctuation or the end (``the answer is a hateful meme`` is no mark);
- (weak) upper-case letters listed with ``or``/``and``/``,``/``/``: ``A or B`` marks both.

*Text mentions*: reply and option texts are compared as lower-case word sequences with all
punctuation dropped (``Not-Hateful.`` == ``not hateful``). Every whole-word occurrence of an
option text is a candidate; overlapping candidates are resolved longest first, so
``not hateful`` is a mention of ``not-hateful`` and never also of ``hateful``. A mention right
after a negation (``not``, ``no``, ``non``, ``never``, ``neither``, ``nor``, ``n't``), separated
from it only by spaces or a hyphen, is dropped: with options ``hateful`` / ``benign`` the reply
``not hateful`` names nothing, while ``no, benign`` names benign.

*Decision*:

- empty reply, or a non-weak letter mark outside the option range (``(C)`` with two options)
  -> None; weak marks outside the range are ignored (``Answer: I think it is hateful`` -> hateful);
- two or more different letters -> None (``A or B``, an echoed option list);
- exactly one letter: it is the answer, unless the text mentions exactly one option and that
  option differs -> None. So ``(B) hateful`` -> B, but ``(A) hateful`` (A = not-hateful) is
  self-contradictory and is *not* credited to either side: we do not simply trust the letter.
  Text mentioning several options (an explanation quoting both) does not override the letter;
- no letter: exactly one option mentioned by text -> it; none or several -> None.

None is never mapped to a default class (the FedMLLM reference code maps failures to class C,
a real CrisisMMD class): generation-mode evaluation (hpc_fed/eval/generate.py) counts it wrong
and reports it in ``invalid_rate``.

Open-ended VQA (``normalize_answer``, ``exact_match``)
-----------------------------------------------------
As used for VQA-RAD / SLAKE exact match, applied to both reply and reference: lower-case;
drop commas inside numbers (``1,000`` -> ``1000``); drop apostrophes (``patient's`` ->
``patients``); keep a ``.`` between two digits (``2.5``) and ``%`` (``50%`` is not ``50``);
turn every other punctuation character (ASCII punctuation incl. ``+ < > $``, and Unicode
category P, e.g. ``-`` ``/`` ``?`` and a trailing period) into a space; keep other symbols
(``°``, ``×``); drop the articles ``a``, ``an``, ``the``; map the number words ``zero`` ..
``ten`` to digits; collapse whitespace. A reply that normalises to
the empty string never matches. (Accuracies over an empty subset are reported as None, never
NaN, by hpc_fed/eval/generate.py.)
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Sequence

from hpc_fed.data.prompts import option_letters

# ---------------------------------------------------------------- multiple choice

_MARKUP = re.compile(r"[*`]")  # markdown emphasis / code around a letter: **B**, `B`
_BRACKETED = re.compile(r"(?<![^\W_])[(\[]\s*([A-Za-z])\s*[)\]]")
_LONE_LINE = re.compile(r"^[(\[]?([A-Za-z])[)\]]?[.:)]?$")
_LEADING = re.compile(r"^[(\[]?([A-Za-z])(?:[)\].:]|\s+[-\u2013\u2014]\s)")
_CUE = re.compile(
    r"(?:\b(?:answer|option|choice)s?\b(?:\s+(?:is|would\s+be|should\s+be))?"
    r"|\b(?:is|it['\u2019]s|choose|pick|select)\b)\s*[:=\-]?\s*",
    re.IGNORECASE)
_AFTER_CUE = re.compile(r"^[(\[]?(?:([A-Z])(?![^\W_])|([a-z])(?=[)\].:,;!?]|\s*$))")
_LISTED = re.compile(
    r"(?<![^\W_])([A-Z])(?:\s*(?:,|/|\bor\b|\band\b)\s*|\s*,\s*(?:or|and)\s+)\(?([A-Z])\)?(?![^\W_])")
_NEGATIONS = frozenset({"not", "no", "non", "never", "neither", "nor", "t"})  # "t": isn't -> isn t


_TOKEN = re.compile(r"[^\W_]+")


def _words(s: str) -> list[str]:
    """Lower-case word tokens, every non-alphanumeric character a separator."""
    return [t.lower() for t in _TOKEN.findall(s)]


def _letter_marks(reply: str, letters: Sequence[str]) -> set[str]:
    """Upper-case letters the reply marks as an option choice (see the module docstring).

    Bracketed, lone-line and leading marks are kept whatever the letter (one outside `letters`
    then makes the reply invalid); the weaker after-cue and listed marks only when the letter
    is in `letters`, so the pronoun in "Answer: I think it is hateful" is no mark.
    """
    text = _MARKUP.sub("", reply).strip()
    marks = {m.group(1) for m in _BRACKETED.finditer(text)}
    for line in text.splitlines():
        m = _LONE_LINE.match(line.strip())
        if m:
            marks.add(m.group(1))
    m = _LEADING.match(text)
    if m:
        marks.add(m.group(1))
    weak = set()
    for cue in _CUE.finditer(text):
        m = _AFTER_CUE.match(text[cue.end():])
        if m:
            weak.add(m.group(1) or m.group(2))
    for m in _LISTED.finditer(text):
        weak.update(m.groups())
    return {c.upper() for c in marks} | {c.upper() for c in weak if c.upper() in letters}


def _text_mentions(reply: str, options: Sequence[str]) -> set[int]:
    """Options whose text occurs in the reply as whole words, longest match first, not negated."""
    tokens = list(_TOKEN.finditer(reply))
    words = [t.group().lower() for t in tokens]
    candidates = []  # (length, start, option index)
    for idx, option in enumerate(options):
        target = _words(option)
        n = len(target)
        if n == 0:
            continue
        for start in range(len(words) - n + 1):
            if words[start:start + n] == target:
                candidates.append((n, start, idx))
    taken = [False] * len(words)
    mentioned = set()
    for n, start, idx in sorted(candidates, key=lambda c: (-c[0], c[1])):
        if any(taken[start:start + n]):
            continue
        taken[start:start + n] = [True] * n
        if start > 0 and words[start - 1] in _NEGATIONS:
            gap = reply[tokens[start - 1].end():tokens[start].start()]
            if not gap.strip(" \t\n-"):
                continue  # "not hateful", "non-hateful", "isn't hateful" -- but not "no, benign"
        mentioned.add(idx)
    return mentioned


def parse_option(reply: str, options: Sequence[str]) -> int | None:
    """Index of the option a free-text reply picked, or None (no option, ambiguous, contradictory).

    Rules and their reasons are in the module docstring.
    """
    if not options:
        raise ValueError("parse_option: no options")
    letters = option_letters(len(options))
    if reply is None or not reply.strip():
        return None
    marks = _letter_marks(reply, letters)
    if any(m not in letters for m in marks) or len(marks) > 1:
        return None
    mentioned = _text_mentions(reply, options)
    if marks:
        chosen = letters.index(next(iter(marks)))
        if len(mentioned) == 1 and mentioned != {chosen}:
            return None
        return chosen
    return next(iter(mentioned)) if len(mentioned) == 1 else None


# ---------------------------------------------------------------- open-ended VQA

_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"])}
_ARTICLES = frozenset({"a", "an", "the"})
_DIGIT_COMMA = re.compile(r"(?<=\d),(?=\d)")
_APOSTROPHES = re.compile(r"['\u2019]")


def normalize_answer(s: str) -> str:
    """VQA normalisation for exact match (rules in the module docstring)."""
    s = _DIGIT_COMMA.sub("", s.lower().strip())
    s = _APOSTROPHES.sub("", s)
    chars = []
    for i, c in enumerate(s):
        if c == "." and 0 < i < len(s) - 1 and s[i - 1].isdigit() and s[i + 1].isdigit():
            chars.append(c)
        elif c != "%" and (c in string.punctuation or unicodedata.category(c).startswith("P")):
            chars.append(" ")
        else:
            chars.append(c)
    words = [_NUMBER_WORDS.get(w, w) for w in "".join(chars).split() if w not in _ARTICLES]
    return " ".join(words)


def exact_match(reply: str, answer: str) -> bool:
    """Normalised reply == normalised answer; an empty normalised reply never matches."""
    got = normalize_answer(reply)
    return bool(got) and got == normalize_answer(answer)

