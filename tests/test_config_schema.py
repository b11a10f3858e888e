"""The schema is the single source of the configuration reference: every field has a docstring,
closed choices are Literals checked at load, docs/configuration.md is what the schema gives, and
`hpc-fed config show` prints a config that loads back unchanged. No processes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hpc_fed.config import RunConfig, load_config
from hpc_fed.config.cli import main as config_main
from hpc_fed.config.reference import PAGE, render
from hpc_fed.config.schema import all_field_specs, class_doc, sections
from hpc_fed.errors import ConfigError

ROOT = Path(__file__).parents[1]
QUICK = str(ROOT / "configs" / "quickstart.yaml")
SPECS = {spec.key: spec for spec in all_field_specs(RunConfig)}


def _closed_choices():
    from hpc_fed.client.optimizers import OPTIMIZERS
    from hpc_fed.data.partition import PARTITIONS
    from hpc_fed.data.prompts import STYLES
    from hpc_fed.data.registry import DATASETS
    from hpc_fed.data.scenarios import SCENARIOS, VIEWS
    from hpc_fed.fed.methods import REGISTRY
    from hpc_fed.fed.regularizers import REGULARIZERS
    from hpc_fed.runs import RUNS
    from hpc_fed.runtime.owned import KINDS
    from hpc_fed.runtime.tracking import TRACKERS

    return {
        "baseline": tuple(RUNS), "model.tiny.prefit_questions": ("open", "all"),
        "model.lora.scope": ("language", "vision"), "data.name": tuple(DATASETS),
        "data.partition": PARTITIONS, "data.scenario": SCENARIOS, "data.prompt": STYLES,
        "data.on_error": ("raise", "skip"), "fed.algorithm": tuple(REGISTRY),
        "fed.regularizer": REGULARIZERS, "fed.weighting": ("samples", "uniform"),
        "fed.assignment": ("balanced", "round_robin"), "train.optimizer": tuple(OPTIMIZERS),
        "train.local_schedule": ("constant", "cosine"), "train.zero_stage": (0, 1, 2, 3),
        "train.precision": ("auto", "fp32", "bf16"), "eval.mode": ("scoring", "generation"),
        "eval.modalities": tuple(VIEWS), "output.kind": tuple(KINDS),
        "output.report_to": tuple(TRACKERS), "distributed.device": ("auto", "cuda", "cpu"),
        "distributed.backend": ("auto", "nccl", "gloo"),
    }


CLOSED = _closed_choices()


def test_the_committed_reference_is_what_the_schema_gives():
    assert (ROOT / PAGE).read_text() == render(), (
        f"{PAGE} is stale: run `hpc-fed config docs --out {PAGE}`")


def test_every_field_and_section_has_a_docstring():
    assert [key for key, spec in SPECS.items() if not spec.doc.strip()] == []
    assert [cls.__name__ for _, cls in sections(RunConfig) if not class_doc(cls).strip()] == []


def test_the_reference_shows_every_field_with_its_default_and_choices():
    page = render()
    assert [key for key in SPECS if f"| `{key}` |" not in page] == []
    assert "| `train.precision` | one of `auto` / `fp32` / `bf16` | `auto` |" in page
    assert "| `fed.weighting` | one of `samples` / `uniform` or `null` | `null` |" in page


def test_closed_choices_are_literals_built_from_what_implements_them():
    assert {key: SPECS[key].choices for key in CLOSED} == CLOSED
    # every other choice-like field states its set too: only these are open strings
    open_strings = {key for key, spec in SPECS.items() if spec.choices is None and spec.base is str}
    assert open_strings == {"model.path", "model.revision", "model.adapter", "model.tiny.dir",
                            "data.root", "data.image_root", "data.test_set", "output.dir"}


@pytest.mark.parametrize("key", sorted(CLOSED))
def test_a_value_outside_the_choices_is_one_line_naming_key_value_and_choices(key):
    spec = SPECS[key]
    bad = 7 if isinstance(spec.choices[0], int) else "bogus"
    with pytest.raises(ConfigError) as exc:
        load_config(None, [f"{key}=[{bad}]" if spec.is_list else f"{key}={bad}"])
    message = str(exc.value)
    assert "\n" not in message and message.startswith(key) and str(bad) in message
    assert all(str(choice) in message for choice in spec.choices), message


def test_load_model_config_checks_the_model_choices_too():
    from hpc_fed.config import load_model_config

    with pytest.raises(ConfigError, match=r"model.lora.scope: 'text' is unknown; choose from language, vis"):
        load_model_config(None, ["model.lora.scope=[text]"])


def test_config_show_round_trips_and_applies_overrides(tmp_path, capsys):
    overrides = ["fed.rounds=3", "train.precision=fp32", "baseline=zero-shot"]
    assert config_main(["show", "fed.rounds=3", "--config", QUICK, *overrides[1:]]) == 0
    shown = capsys.readouterr().out
    assert yaml.safe_load(shown)["fed"]["rounds"] == 3
    saved = tmp_path / "shown.yaml"
    saved.write_text(shown)
    assert load_config(saved) == load_config(QUICK, overrides)
    assert config_main(["show"]) == 0  # no --config: the defaults, every key
    defaults = yaml.safe_load(capsys.readouterr().out)
    assert defaults["train"]["zero_stage"] == 2 and defaults["fed"]["regularizer"] == "none"


def test_config_show_refuses_a_bad_key_or_value_in_one_line(capsys):
    for override, fragment in (("fed.roundz=3", "fed.roundz"),
                               ("train.precision=fp16", "train.precision ('fp16') must be one of")):
        assert config_main(["show", "--config", QUICK, override]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("hpc-fed config: error: ") and fragment in err


def test_config_help_lists_the_subcommands(capsys):
    from hpc_fed.cli import main as hpc_fed_main

    with pytest.raises(SystemExit):
        hpc_fed_main(["config", "--help"])
    out = capsys.readouterr().out
    assert all(action in out for action in ("show", "fields", "docs"))
    with pytest.raises(SystemExit):
        hpc_fed_main(["--help"])
    assert "config" in capsys.readouterr().out


def test_config_fields_lists_every_key(capsys):
    assert config_main(["fields"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == list(SPECS)
    assert "train.zero_stage: one of 0 / 1 / 2 / 3 = 2" in lines


def test_config_docs_writes_the_page_and_checks_a_stale_one(tmp_path, capsys):
    page = tmp_path / "configuration.md"
    assert config_main(["docs", "--out", str(page)]) == 0
    assert page.read_text() == render()
    assert config_main(["docs", "--check", str(page)]) == 0
    page.write_text(render().replace("LoRA rank.", "The LoRA rank."))
    assert config_main(["docs", "--check", str(page)]) == 1
    assert f"hpc-fed config docs --out {page}" in capsys.readouterr().err


def test_config_docs_never_replaces_a_file_it_did_not_write(tmp_path, capsys):
    notes = tmp_path / "configuration.md"
    notes.write_text("# my notes\n")
    assert config_main(["docs", "--out", str(notes)]) == 2
    assert "is not a file hpc_fed wrote" in capsys.readouterr().err
    assert notes.read_text() == "# my notes\n"
