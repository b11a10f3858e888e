"""Reading the config schema: every field's key, type, allowed values, default and docstring.

A field with a closed set of values is annotated `Annotated[str, Literal[...]]` (`int` for numbers,
`list[Annotated[str, Literal[...]]]` for a list of them). `typing.get_type_hints` hands OmegaConf
the plain `str` / `int` (OmegaConf 2.3 refuses a bare Literal; 2.4 accepts one), so OmegaConf keeps
converting and type-checking the value on every supported version, while this module reads the
Literal: `check_choices` refuses a value outside it at load, and the reference lists it.

A field's docstring is the string literal written right after it, read here from the source with
`ast` (the attribute-docstring convention); a section's is its class docstring.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
import types
import typing
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal, Union

from hpc_fed.errors import require


@dataclass(frozen=True)
class FieldSpec:
    """One leaf of the schema: what the reference shows and what `check_choices` enforces."""

    key: str  # dotted, e.g. train.precision
    base: Any  # the annotation without Optional / Annotated, e.g. int, list[str]
    default: Any
    doc: str
    choices: tuple | None = None  # allowed values (of each element, for a list)
    optional: bool = False  # null is allowed
    is_list: bool = False


def section_fields(cls: type) -> list[tuple[str, Any, Any]]:
    """(name, annotation with its extras, default) of each field of dataclass `cls`, in order."""
    hints = typing.get_type_hints(cls, include_extras=True)
    out = []
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        out.append((f.name, hints[f.name], default))
    return out


def sections(cls: type, prefix: str = "") -> list[tuple[str, type]]:
    """(dotted prefix, dataclass) of `cls` and of every section nested in it, depth first."""
    found = [(prefix, cls)]
    for name, hint, _ in section_fields(cls):
        if dataclasses.is_dataclass(hint):
            found += sections(hint, f"{prefix}{name}.")
    return found


def field_specs(cls: type, prefix: str = "") -> list[FieldSpec]:
    """Every leaf field of section `cls` (not those of the sections nested in it)."""
    docs = attribute_docs(cls)
    specs = []
    for name, hint, default in section_fields(cls):
        if dataclasses.is_dataclass(hint):
            continue
        optional, hint = _strip_optional(hint)
        is_list = typing.get_origin(hint) in (list, typing.List)
        element = typing.get_args(hint)[0] if is_list else hint
        choices = _literal_values(element)
        base = list[_plain(element)] if is_list else _plain(element)
        specs.append(FieldSpec(key=prefix + name, base=base, default=default, doc=docs.get(name, ""),
                               choices=choices, optional=optional, is_list=is_list))
    return specs


def all_field_specs(cls: type) -> list[FieldSpec]:
    return [spec for prefix, section in sections(cls) for spec in field_specs(section, prefix)]


def check_choices(obj: Any, prefix: str = "") -> None:
    """Raise a ConfigError naming the key, the value and the allowed values for the first field of
    config `obj` (or of a section nested in it) whose value lies outside its Literal."""
    for spec in field_specs(type(obj), prefix):
        value = getattr(obj, spec.key.rpartition(".")[2])
        if spec.choices is None or (value is None and spec.optional):
            continue
        allowed = ", ".join(str(c) for c in spec.choices) + (" or null" if spec.optional else "")
        if spec.is_list:  # name the one item that is wrong
            for item in value:
                require(item in spec.choices, f"{spec.key}: {item!r} is unknown; choose from {allowed}")
        else:
            require(value in spec.choices, f"{spec.key} ({value!r}) must be one of {allowed}")
    for name, hint, _ in section_fields(type(obj)):
        if dataclasses.is_dataclass(hint):
            check_choices(getattr(obj, name), f"{prefix}{name}.")


@cache
def attribute_docs(cls: type) -> dict[str, str]:
    """field name -> the string literal right after the field in `cls`'s source."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    docs = {}
    for node, after in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)):
            docs[node.target.id] = inspect.cleandoc(after.value.value)
    return docs


@cache
def class_doc(cls: type) -> str:
    """`cls`'s own docstring (dataclass writes a signature into __doc__ when there is none)."""
    return ast.get_docstring(ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0]) or ""


def _strip_optional(hint) -> tuple[bool, Any]:
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) < len(typing.get_args(hint)):
            return True, args[0] if len(args) == 1 else Union[tuple(args)]
    return False, hint


def _literal_values(hint) -> tuple | None:
    if typing.get_origin(hint) is Annotated:
        for meta in hint.__metadata__:
            if typing.get_origin(meta) is Literal:
                return typing.get_args(meta)
    return None


def _plain(hint):
    return typing.get_args(hint)[0] if typing.get_origin(hint) is Annotated else hint

