"""Client folders prepared for the original FedMLLM code (github.com/1xbq1/FedMLLM).

FedMLLM's data_gen/gen_data_*.py scripts write one folder per partition (e.g.
minicpmv_data/partition-alpha0.5-clt10/) holding `client_{i}.json` for i = 0..N-1, which its
finetune.py reads by index. Each file is one JSON list (MiniCPM-V's fine-tuning format):

    {"id": 42953, "image": "/path/to/.../img/42953.png" or null,
     "conversations": [{"role": "user", "content": "<image>\\n..."},
                       {"role": "assistant", "content": "(B) hateful"}]}

LLaVA's spelling of the turns, {"from": "human" / "gpt", "value": ...}, is read too. `image` may
be absent or null (a text-only sample); a relative path is joined to `image_root` (default: the
folder of the JSON file); an absolute one is used as is. (FedMLLM writes absolute paths under the
placeholder /path/to/training_data/: rewrite them to where the data lives.)

The user turn becomes the record's question, with the `<image>` token removed. When it lists
options, as lines "(A) x" / "A. x" / "A) x" or inline "(A) x (B) y", and the answer is one of them
(by letter, "(B)", "B.", "(B) text", or by text), the record is multiple-choice: options = the
option texts (underscores turned into spaces, so "affected_individuals" matches the CrisisMMD
loader), answer = the option text, and the option list and the "Answer with the option's letter"
line leave the question. FedMLLM's multiple-choice template

    Select the best answer to the following multiple-choice question based on the text and image.
    <the sample's text>
    <question>
    Options:
    (A) ...

is split further: the preamble is dropped, the lines between it and the question are the record's
text, and the trailing modality phrase ("based on the text and image") leaves the question (the
prompt builder adds its own). Otherwise the record is open-ended (options empty) with the whole
user turn as question.

FedMLLM has no test file in this format: its eval_*.py scripts read the published test files
(Hateful Memes test_seen.jsonl, CrisisMMD task_humanitarian_text_img_test.tsv, VQA-RAD
test_* questions, SLAKE test.json), which the hateful_memes / crisismmd / medvqa loaders read.
`load_fedmllm_test` reads a test set someone wrote in the client format: a file, or a folder
holding `test.json`.
"""

from __future__ import annotations

import json
import os
import re

from hpc_fed.data.prompts import option_letters
from hpc_fed.data.records import Record
from hpc_fed.errors import DataFormatError

CLIENT_FILE = re.compile(r"^client_(\d+)\.json$")
TEST_FILE = "test.json"
IMAGE_TOKEN = "<image>"
USER_ROLES = ("user", "human")
ASSISTANT_ROLES = ("assistant", "gpt")
MAKE_DATA = ("write the folder with FedMLLM's data_gen/gen_data_*.py scripts (their "
             "minicpmv_data/... output) or in the same format")

# The instruction line in every wording of the reference's data_gen scripts: per modality
# ("... question based on the text and image."), none ("... question."), the modality-agnostic
# `_aug` files ("... question, without considering the modality."), and the prompt ablation's
# ("... based on the available content from the text and image.", "... based on all available
# information, regardless of its modality.").
_PREAMBLE = re.compile(r"^Select the best answer to the following multiple-choice question"
                       r"(?: based on [^.]*|, without considering the modality)?\.$", re.IGNORECASE)
# The same phrases at the end of the question line, removed (the prompt builder adds its own).
_MODALITY = re.compile(r"(?:\s+based on the (?:text and (?:the )?image|image and (?:the )?text|text|image)"
                       r"|\s+based on the available content from the text and image"
                       r"|\s+based on all available information, regardless of its modality"
                       r"|,\s*without considering the modality)(?=\s*[?.]?$)", re.IGNORECASE)
_OPTION_LINE = re.compile(r"^\(?([A-Z])[).:]\s*(.+)$")
_INLINE = re.compile(r"\(([A-Z])\)\s*")
_HEADER = re.compile(r"^(?:options|choices)\s*:?$", re.IGNORECASE)
_TRAILING_HEADER = re.compile(r"\s*(?:options|choices)\s*:\s*$", re.IGNORECASE)
_BOILERPLATE = re.compile(r"^Answer with the option'?s letter", re.IGNORECASE)
_ANSWER_LETTER = re.compile(r"^\(?([A-Z])(?:\)|\.|:|\s|$)\s*(.*)$", re.DOTALL)


def _option_text(text: str) -> str:
    return " ".join(text.replace("_", " ").split())


def _norm(text: str) -> str:
    return _option_text(text).casefold()


def find_options(lines: list[str]) -> tuple[list[str], list[str]] | None:
    """(option texts, the other lines), or None when the lines list no options A, B, ..."""
    for start, line in enumerate(lines):
        m = _OPTION_LINE.match(line)
        if not m or m.group(1) != "A":
            continue
        options, end = [], start
        while end < len(lines):
            m = _OPTION_LINE.match(lines[end])
            if not m or m.group(1) != chr(ord("A") + len(options)):
                break
            options.append(m.group(2).strip())
            end += 1
        if len(options) >= 2:
            return options, lines[:start] + lines[end:]
    for k, line in enumerate(lines):
        parts = _INLINE.split(line)
        letters, texts = parts[1::2], parts[2::2]
        if (2 <= len(letters) <= 26 and letters == option_letters(len(letters))
                and all(t.strip() for t in texts)):
            prefix = _TRAILING_HEADER.sub("", parts[0]).strip()
            return [t.strip() for t in texts], lines[:k] + ([prefix] if prefix else []) + lines[k + 1:]
    return None


def match_answer(answer: str, options: tuple[str, ...]) -> str | None:
    """The option `answer` names, by text or by letter ("B", "(B)", "B.", "(B) text"), or None."""
    answer = answer.strip()
    for option in options:
        if _norm(answer) == _norm(option):
            return option
    m = _ANSWER_LETTER.match(answer)
    if m:
        index = ord(m.group(1)) - ord("A")
        rest = m.group(2).strip()
        if index < len(options) and (not rest or _norm(rest) == _norm(options[index])):
            return options[index]
    return None


def parse_turns(prompt: str, answer: str) -> tuple[str, str | None, tuple[str, ...], str]:
    """(question, text, options, answer) from one user turn and its assistant reply."""
    question = prompt.replace(IMAGE_TOKEN, "").strip()
    answer = answer.strip()
    lines = [line.strip() for line in question.split("\n")]
    found = find_options(lines)
    if found is None:
        return question, None, (), answer
    texts, rest = found
    options = tuple(_option_text(t) for t in texts)
    chosen = match_answer(answer, options)
    if chosen is None or len(set(options)) != len(options):
        return question, None, (), answer
    rest = [line for line in rest if not _HEADER.match(line) and not _BOILERPLATE.match(line)]
    if rest and _PREAMBLE.match(rest[0]):
        body = rest[1:]
        while body and not body[-1]:
            body.pop()
        if body:
            text = "\n".join(body[:-1]).strip()
            return _MODALITY.sub("", body[-1]).strip(), text or None, options, chosen
    return "\n".join(rest).strip(), None, options, chosen


def _turn(turn, where: str) -> tuple[str, str]:
    if isinstance(turn, dict) and "role" in turn and "content" in turn:
        role, content = turn["role"], turn["content"]
    elif isinstance(turn, dict) and "from" in turn and "value" in turn:
        role, content = turn["from"], turn["value"]
    else:
        raise DataFormatError(f"{where}: a turn must be {{'role', 'content'}} (MiniCPM-V) or "
                              f"{{'from', 'value'}} (LLaVA), got {turn!r}; {MAKE_DATA}")
    if not isinstance(content, str):
        raise DataFormatError(f"{where}: a turn's content must be a string, got "
                              f"{type(content).__name__}; {MAKE_DATA}")
    return str(role), content


def _image(value, image_root: str, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise DataFormatError(f"{where}: 'image' must be one path string or null (multi-image "
                              f"records are not supported), got {value!r}")
    path = os.path.join(image_root, value.strip())
    if not os.path.isfile(path):
        raise DataFormatError(f"{where} names image {value!r}, but {path} does not exist; store "
                              f"paths relative to the image root ({image_root}, set with "
                              "image_root) or rewrite FedMLLM's absolute /path/to/training_data/ "
                              "placeholder to where the images are")
    return os.path.abspath(path)


def _record(item, index: int, path: str, image_root: str, default_id: str) -> Record:
    where = f"{path} record {index}"
    if not isinstance(item, dict) or "conversations" not in item:
        raise DataFormatError(f"{where} is not an object with 'conversations' (and 'id', "
                              f"'image'); {MAKE_DATA}")
    turns = item["conversations"]
    if not isinstance(turns, list) or len(turns) != 2:
        count = len(turns) if isinstance(turns, list) else type(turns).__name__
        raise DataFormatError(f"{where}: 'conversations' must hold exactly two turns (user, "
                              f"assistant), got {count}; multi-turn records are not supported")
    (role_q, prompt), (role_a, reply) = (_turn(t, where) for t in turns)
    if role_q not in USER_ROLES or role_a not in ASSISTANT_ROLES:
        raise DataFormatError(f"{where}: turns are ({role_q!r}, {role_a!r}); expected a user turn "
                              f"{USER_ROLES} then an assistant turn {ASSISTANT_ROLES}")
    record_id = str(item["id"]) if item.get("id") is not None else default_id
    where = f"{path} record {index} (id {record_id})"
    question, text, options, answer = parse_turns(prompt, reply)
    if not question:
        raise DataFormatError(f"{where}: the user turn holds no question; fix the record")
    image = _image(item.get("image"), image_root, where)
    try:
        return Record(id=record_id, question=question, answer=answer, options=options,
                      image=image, text=text)
    except DataFormatError as e:
        raise DataFormatError(f"{where}: {e}") from None


def load_records_file(path: str, image_root: str | None = None) -> list[Record]:
    """The records of one JSON file in the client format, in file order."""
    path = os.path.abspath(path)
    image_root = os.path.abspath(image_root) if image_root is not None else os.path.dirname(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise DataFormatError(f"file {path} not found; {MAKE_DATA}") from None
    except json.JSONDecodeError as e:
        hint = MAKE_DATA
        if e.msg == "Extra data":
            hint = ("it looks like JSON Lines: FedMLLM's raw partition (data_partition_*.py output, "
                    "raw_data/partition-...); point at the minicpmv_data/ folder that its "
                    "gen_data_*.py scripts write from it")
        raise DataFormatError(f"{path} is not valid JSON ({e.msg} at line {e.lineno}, column "
                              f"{e.colno}); {hint}") from None
    if not isinstance(data, list):
        raise DataFormatError(f"{path} holds a JSON {type(data).__name__}; expected a JSON list of "
                              f"records; {MAKE_DATA}")
    stem = os.path.splitext(os.path.basename(path))[0]
    return [_record(item, i, path, image_root, f"{stem}-{i}") for i, item in enumerate(data)]


def load_fedmllm_clients(root: str, image_root: str | None = None) -> list[list[Record]]:
    """One record list per `client_{i}.json` in `root`, ordered by i (0..N-1, no gaps)."""
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise DataFormatError(f"FedMLLM client folder {root} not found; {MAKE_DATA} and set "
                              "data.root to it")
    indexed: dict[int, str] = {}
    for name in sorted(os.listdir(root)):
        m = CLIENT_FILE.match(name)
        if not m:
            continue
        index = int(m.group(1))
        if index in indexed:
            raise DataFormatError(f"{root}: {indexed[index]} and {name} both name client {index}; "
                                  "keep one")
        indexed[index] = name
    if not indexed:
        raise DataFormatError(f"{root} holds no client_{{i}}.json file; {MAKE_DATA} and set "
                              "data.root to the partition folder")
    gaps = sorted(set(range(max(indexed) + 1)) - set(indexed))
    if gaps:
        raise DataFormatError(f"{root}: client files must be numbered 0..N-1 without gaps; "
                              f"client_{gaps[0]}.json is missing (missing indices {gaps}); add "
                              "them or renumber the files")
    image_root = image_root if image_root is not None else root
    return [load_records_file(os.path.join(root, indexed[i]), image_root) for i in sorted(indexed)]


def load_fedmllm_test(path_or_root: str, image_root: str | None = None) -> list[Record]:
    """The records of a test file in the client format: a file, or a folder holding test.json."""
    path = os.path.abspath(path_or_root)
    if os.path.isdir(path):
        path = os.path.join(path, TEST_FILE)
        if not os.path.isfile(path):
            raise DataFormatError(
                f"test file {path} not found; FedMLLM itself evaluates on the published test "
                "files (use data.name hateful_memes, crisismmd or medvqa for them), or write the "
                f"test set in the client format as {TEST_FILE} there, or pass the file's path")
    return load_records_file(path, image_root)
