"""docs/configuration.md, written from the schema: every section and field with its type or
choices, its default and its docstring (`hpc-fed config docs` writes it; a test keeps the
committed page equal to what this module writes)."""

from __future__ import annotations

import typing

from hpc_fed.config import RunConfig
from hpc_fed.config.schema import FieldSpec, class_doc, field_specs, sections

PAGE = "docs/configuration.md"

INTRO = """\
# Configuration reference

<!-- Generated from the schema by `hpc-fed config docs`; edit the field docstrings in
hpc_fed/*/config.py (or the intro in hpc_fed/config/reference.py), then regenerate. -->

A run's settings are one typed config, built in three layers, each over the one before:

1. the defaults below;
2. the YAML file of `--config FILE` (e.g. `configs/quickstart.yaml`), which sets only the keys it
   names, nested by section (`rounds: 3` inside a `fed:` block);
3. `key=value` overrides after the command's options, applied in order, e.g.
   `hpc-fed launch --nproc 2 --config configs/quickstart.yaml fed.rounds=3 train.lr=1e-3`.

Values are YAML: `fed.regularizer=null`, `model.lora.target_modules=[q_proj,v_proj]`,
`'train.deepspeed={zero_optimization: {stage3_param_persistence_threshold: 0}}'` (quoted for the
shell). Every command that reads a config checks it before anything starts: an unknown key, a
value of the wrong type, a value outside a key's choices or a broken rule stops it with one line
naming the key, the value and what is allowed.

`hpc-fed config show --config FILE [key=value ...]` prints the resolved config with every
default, as YAML that loads back as the same config; a run saves the same thing as `config.yaml`
in its run directory. A benchmark matrix (`configs/benchmark/`) names a `base` run config and
adds overrides per entry (`hpc_fed/benchmark/matrix.py`).

A type "or `null`" accepts `null`; "list of" takes a YAML list (`[a, b]`). Choices drawn from a
registry (datasets, FL methods, run kinds, optimizers, trackers) are the ones hpc_fed implements.
"""


def render() -> str:
    """The whole page."""
    parts = [INTRO]
    for prefix, section in sections(RunConfig):
        specs = field_specs(section, prefix)
        if not specs:
            continue
        title = f"`{prefix.rstrip('.')}`" if prefix else "Top level"
        parts.append(f"## {title}\n\n{_one_paragraph(class_doc(section))}\n\n"
                     "| Key | Type | Default | Meaning |\n|---|---|---|---|\n"
                     + "".join(_row(spec) for spec in specs))
    return "\n".join(parts)


def _row(spec: FieldSpec) -> str:
    cells = (f"`{spec.key}`", type_text(spec), f"`{default_text(spec.default)}`", _one_paragraph(spec.doc))
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |\n"


def type_text(spec: FieldSpec) -> str:
    """`auto` / `fp32` / `bf16`, `int`, `list of str`, `float or null`..."""
    if spec.choices is not None:
        text = " / ".join(f"`{c}`" for c in spec.choices)
        text = f"list of {text}" if spec.is_list else f"one of {text}"
    else:
        text = _base_name(spec.base)
    return text + (" or `null`" if spec.optional else "")


def default_text(value) -> str:
    """A default as it would be written in YAML on the command line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return value if value else '""'
    if isinstance(value, list):
        return "[" + ", ".join(default_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {default_text(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _base_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin in (list, typing.List):
        return f"list of {_base_name(typing.get_args(tp)[0])}"
    if origin in (dict, typing.Dict):
        key, value = typing.get_args(tp)
        return "mapping" if value is typing.Any else f"mapping of {_base_name(key)} to {_base_name(value)}"
    return getattr(tp, "__name__", str(tp))


def _one_paragraph(text: str) -> str:
    return " ".join(text.split())
