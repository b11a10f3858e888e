from pathlib import Path

import pytest

from hpc_fed.config import RunConfig, load_config
from hpc_fed.distributed.topology import num_client_groups
from hpc_fed.errors import ConfigError

ALL_YAML = sorted((Path(__file__).parents[1] / "configs").rglob("*.yaml"))
MATRICES = [p for p in ALL_YAML if p.parent.name == "benchmark" and not p.stem.endswith("_base")]
CONFIGS = [p for p in ALL_YAML if p not in MATRICES]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads_and_names_its_command(path):
    assert isinstance(load_config(path), RunConfig)
    assert path.read_text().startswith("# hpc-fed "), "each YAML starts with the command that runs it"


@pytest.mark.parametrize("path", MATRICES, ids=lambda p: p.name)
def test_every_shipped_benchmark_matrix_expands_with_valid_entries(path, monkeypatch):
    from hpc_fed.benchmark.matrix import expand

    monkeypatch.chdir(Path(__file__).parents[1])
    assert expand(path).entries  # validates every entry's overrides against the schema
    assert path.read_text().startswith("# hpc-fed "), "each YAML starts with the command that runs it"


def test_overrides_are_typed_and_applied():
    cfg = load_config(None, ["fed.rounds=3", "train.lr=0.5", "model.lora.target_modules=[q_proj]"])
    assert cfg.fed.rounds == 3 and cfg.train.lr == 0.5
    assert cfg.model.lora.target_modules == ["q_proj"]


@pytest.mark.parametrize("overrides, fragment", [
    (["fed.roundz=3"], "fed.roundz"),
    (["fed.rounds=three"], "fed.rounds"),
    (["fed.sample_clients=12"], "fed.sample_clients (12)"),
    (["train.local_epochs=1"], "train.local_steps"),
    (["train.local_steps=null"], "exactly one"),
    (["train.zero_stage=4"], "train.zero_stage (4)"),
    (["fed.algorithm=fedfoo"], "fed.algorithm ('fedfoo')"),
    (["data.alpha=0"], "data.alpha (0.0)"),
    (["train.warmup_rounds=20"], "train.warmup_rounds (20)"),
    (["fed.rounds"], "key=value"),
])
def test_bad_values_stop_with_one_message_naming_the_key(overrides, fragment):
    with pytest.raises(ConfigError) as exc:
        load_config(None, overrides)
    assert fragment in str(exc.value)


def test_unknown_key_in_yaml_names_key_and_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("fed:\n  rounds: 2\n  samples_clients: 3\n")
    with pytest.raises(ConfigError, match=r"fed\.samples_clients.*bad\.yaml"):
        load_config(bad)


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_world_size_must_split_into_client_groups():
    assert num_client_groups(4, 2) == 2
    with pytest.raises(ConfigError, match=r"fed.ranks_per_client \(3\) does not divide the world size \(4\)"):
        num_client_groups(4, 3)


def test_baseline_names():
    assert load_config(None, ["baseline=zero-shot"]).baseline == "zero_shot"
    with pytest.raises(ConfigError, match="baseline"):
        load_config(None, ["baseline=oracle"])
