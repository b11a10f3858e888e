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
    # configs/paper/ are for the user's data: pointed at the test fixtures in that layout here
    fixtures = Path(__file__).parent / "fixtures"
    root = {"hateful_memes": "hateful_memes", "crisismmd": "crisismmd", "medvqa": "medvqa"}
    overrides = [f"data.root={fixtures / root[path.stem]}"] if path.parent.name == "paper" else []
    assert isinstance(load_config(path, overrides), RunConfig)
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


def test_the_zero_stage_cannot_be_changed_behind_the_checks():
    """train.deepspeed once set ZeRO-3 after checks saw stage 2, and died mid-round."""
    with pytest.raises(ConfigError, match=r"train.deepspeed.zero_optimization.stage is set by hpc_fed "
                                          r"from train.zero_stage"):
        load_config(None, ["train.deepspeed={zero_optimization: {stage: 3}}"])
    for key, owner in [("train_batch_size: 8", "train.micro_batch_size"), ("bf16: {enabled: true}",
                       "train.precision"), ("optimizer: {type: Adam}", "train.optimizer")]:
        with pytest.raises(ConfigError, match=owner):
            load_config(None, [f"train.deepspeed={{{key}}}"])
    # keys hpc_fed does not own still pass through
    cfg = load_config(None, ["train.deepspeed={zero_optimization: {stage3_param_persistence_threshold: 0}}"])
    assert cfg.train.deepspeed == {"zero_optimization": {"stage3_param_persistence_threshold": 0}}


def test_yaml_mistakes_in_an_override_are_one_line():
    with pytest.raises(ConfigError) as exc:  # valid YAML for the key "stage:3": never meant
        load_config(None, ["train.deepspeed={zero_optimization: {stage:3}}"])
    assert "command-line override" in str(exc.value) and "write {stage: 3}" in str(exc.value)
    with pytest.raises(ConfigError, match=r"override 'train.deepspeed=\{a: \[1, 2\}' is not valid YAML"):
        load_config(None, ["train.deepspeed={a: [1, 2}"])


def test_errors_say_where_they_come_from(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("fed:\n  rounds: 2\n")
    with pytest.raises(ConfigError) as exc:  # a typo on the command line is not "in good.yaml"
        load_config(good, ["fed.roundz=3"])
    assert "command-line override 'fed.roundz=3'" in str(exc.value) and "good.yaml" not in str(exc.value)
    broken = tmp_path / "broken.yaml"
    broken.write_text("fed:\n  rounds: [2\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml is not valid YAML at line \d+"):
        load_config(broken)


def test_allowed_values_come_from_the_registries(monkeypatch):
    """fed.algorithm's choices are the methods of hpc_fed/fed/methods, and a method's defaults are
    read from its class there."""
    from hpc_fed.config.schema import all_field_specs
    from hpc_fed.fed.methods import REGISTRY, FedAvg
    from hpc_fed.runs import RUNS

    choices = {spec.key: spec.choices for spec in all_field_specs(RunConfig)}
    assert choices["fed.algorithm"] == tuple(REGISTRY) and choices["baseline"] == tuple(RUNS)

    class ProxByDefault(FedAvg):
        default_regularizer = "prox"

    monkeypatch.setitem(REGISTRY, "fedavg", ProxByDefault)
    assert load_config(None, ["fed.algorithm=fedavg"]).fed.regularizer == "prox"
    with pytest.raises(ConfigError, match=f"must be one of {', '.join(RUNS)}$"):
        load_config(None, ["baseline=oracle"])


def test_section_rules_live_with_their_section():
    from hpc_fed.client.config import TrainConfig
    from hpc_fed.eval.config import EvalConfig

    with pytest.raises(ConfigError, match="train.micro_batch_size"):
        TrainConfig(micro_batch_size=0).check()
    with pytest.raises(ConfigError, match="eval.modalities"):
        EvalConfig(modalities=["no_text"]).check()


def test_scaffold_refuses_a_schedule_inside_the_round():
    from hpc_fed.errors import ConfigError

    with pytest.raises(ConfigError, match="fed.algorithm=scaffold needs train.local_schedule=constant"):
        load_config(None, ["fed.algorithm=scaffold", "train.local_schedule=cosine"])
    load_config(None, ["fed.algorithm=fedavg", "train.local_schedule=cosine"])


def test_a_missing_config_names_the_shipped_run_configs():
    from hpc_fed.config import require_config, shipped_configs

    names = {Path(p).as_posix().split("configs/", 1)[-1] for p in shipped_configs()}
    assert {"quickstart.yaml", "paper/hateful_memes.yaml", "benchmark/offline.yaml"} <= names
    with pytest.raises(ConfigError) as err:
        require_config(None, "hpc-fed train")
    assert "paper/hateful_memes.yaml" in str(err.value) and "benchmark/" not in str(err.value)
