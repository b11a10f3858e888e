"""Benchmark matrix expansion, validation, --list and --dry-run (no training)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from matrix_helpers import FULL, SMALL, write_matrix

from hpc_fed.benchmark.matrix import expand, format_table, safe_component, select
from hpc_fed.errors import ConfigError
from hpc_fed.launch import benchmark


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """The 244-entry matrix (expanded once: validation loads ~120 run configs)."""
    return expand(write_matrix(tmp_path_factory.mktemp("full"), FULL))


def test_expansion_count_order_and_stable_indices(full):
    # per dataset: 2 zero-shot seeds + 12 settings x (2 baselines + 3 methods) x 2 seeds
    assert len(full.entries) == 2 * (2 + 12 * 5 * 2) == 244
    assert [e.index for e in full.entries] == list(range(244))
    names = [e.name for e in full.entries]
    assert names[:8] == [
        "claims/all/Zero-shot/seed0", "claims/all/Zero-shot/seed1",
        "claims/aligned-alpha5.0/Local/seed0", "claims/aligned-alpha5.0/Local/seed1",
        "claims/aligned-alpha5.0/Centralized/seed0", "claims/aligned-alpha5.0/Centralized/seed1",
        "claims/aligned-alpha5.0/FedAvg/seed0", "claims/aligned-alpha5.0/FedAvg/seed1",
    ]
    assert names[10:13] == ["claims/aligned-alpha5.0/FedAvg+prompt/seed0",
                            "claims/aligned-alpha5.0/FedAvg+prompt/seed1",
                            "claims/aligned-alpha1.0/Local/seed0"]
    settings = list(dict.fromkeys(n.split("/")[1] for n in names if n.startswith("claims/")))
    assert settings == ["all", "aligned-alpha5.0", "aligned-alpha1.0", "aligned-alpha0.5",
                        "missing-beta0.3", "missing-beta0.4", "missing-beta0.5",
                        "cross-k3", "cross-k5", "cross-k7", "hybrid-p0.8", "hybrid-p0.7", "hybrid-p0.6"]
    assert names[122] == "mc/all/Zero-shot/seed0"
    assert names[-1] == "mc/hybrid-p0.6/FedAvg+prompt/seed1"
    assert len(set(names)) == 244
    # the same file expands to the same indices every time (SLURM array tasks rely on it)
    again = expand(full.source, validate=False)
    assert [(e.index, e.name, e.overrides) for e in again.entries] == \
        [(e.index, e.name, e.overrides) for e in full.entries]
    assert full.name == "offline" and full.nproc == 2 and Path(full.base) == full.source.parent / "base.yaml"


def test_overrides_and_tags(full):
    by_name = {e.name: e for e in full.entries}
    e = by_name["claims/missing-beta0.3/FedAvg/seed1"]
    run_dir = full.source.parent / "out" / "claims" / "missing-beta0.3" / "FedAvg" / "seed1"
    assert e.run_dir == run_dir
    assert e.overrides == [
        "fed.rounds=6", "data.max_train_samples=100", "data.scenario=missing", "data.beta=0.3",
        "fed.algorithm=fedavg", "fed.seed=1", "train.seed=1", "data.seed=1", f"output.dir={run_dir}",
        "output.tags.dataset=claims", "output.tags.scenario=missing", "output.tags.setting=beta0.3",
        "output.tags.method=FedAvg", "output.tags.seed=1",
    ]
    assert e.tags == {"dataset": "claims", "scenario": "missing", "setting": "beta0.3",
                      "method": "FedAvg", "seed": "1"}
    for name, kv in [("mc/aligned-alpha0.5/FedProx/seed0", "data.alpha=0.5"),
                     ("mc/cross-k7/FedProx/seed0", "data.k=7"),
                     ("mc/hybrid-p0.7/FedProx/seed0", "data.p=0.7")]:
        assert kv in by_name[name].overrides
        assert f"data.scenario={name.split('/')[1].split('-')[0]}" in by_name[name].overrides
    zs = by_name["mc/all/Zero-shot/seed0"]
    assert not any(o.startswith(("data.scenario=", "fed.algorithm=")) for o in zs.overrides)
    assert "baseline=zero_shot" in zs.overrides and "data.max_train_samples=200" in zs.overrides
    assert zs.tags == {"dataset": "mc", "scenario": "all", "setting": "all", "method": "Zero-shot",
                       "seed": "0"}
    local_b = by_name["mc/cross-k5/Local/seed1"]
    assert {"baseline=local", "data.scenario=cross", "data.k=5", "fed.seed=1"} <= set(local_b.overrides)
    plus = by_name["claims/hybrid-p0.8/FedAvg+prompt/seed0"]
    assert plus.run_dir.parts[-2] == "FedAvg+prompt"
    assert plus.overrides.index("data.prompt=modality_agnostic") < plus.overrides.index("fed.seed=0")


def test_overrides_load_as_a_run_config(full):
    from hpc_fed.config import load_config

    e = next(e for e in full.entries if e.name == "claims/cross-k5/FedProx/seed1")
    cfg = load_config(full.base, e.overrides)
    assert cfg.fed.rounds == 6 and cfg.data.scenario == "cross" and cfg.data.k == 5
    assert cfg.fed.algorithm == "fedprox" and cfg.fed.seed == 1 and cfg.train.seed == 1
    assert cfg.output.dir == str(e.run_dir)
    assert cfg.output.tags == e.tags


def test_defaults_seed_keys_and_safe_names(tmp_path):
    path = write_matrix(tmp_path, """\
base: base.yaml
seed_keys: [data.seed]
datasets:
  my data: []
scenarios:
  missing: {key: data.beta, values: [0.5]}
methods:
  Fed Avg: []
""")
    m = expand(path)
    assert m.name == "matrix" and m.nproc == 1 and m.output_root == Path("runs/benchmark/matrix")
    (e,) = m.entries
    assert e.name == "my data/missing-beta0.5/Fed Avg/seed0"
    assert e.run_dir == Path("runs/benchmark/matrix/my_data/missing-beta0.5/Fed_Avg/seed0")
    assert "data.seed=0" in e.overrides and not any(o.startswith("fed.seed") for o in e.overrides)
    assert "output.tags.method=Fed Avg" in e.overrides
    assert safe_component("a b:c/d") == "a_b_c_d" and safe_component("FedAvg+prompt") == "FedAvg+prompt"


def test_base_resolved_beside_the_matrix_file(tmp_path, monkeypatch):
    path = write_matrix(tmp_path, SMALL)
    monkeypatch.chdir("/")
    assert Path(expand(path).base) == tmp_path / "base.yaml"


@pytest.mark.parametrize("edit, key", [
    (lambda t: t + "sedes: [1]\n", "sedes"),
    (lambda t: t.replace("  d: []\n", ""), "datasets"),
    (lambda t: t.replace("methods:\n  FedAvg: [fed.algorithm=fedavg]\n", "methods: {}\n"), "methods"),
    (lambda t: t.replace("missing:", "missng:"), "scenarios.missng"),
    (lambda t: t.replace("[fed.algorithm=fedavg]", "[fed.algorithm]"), "methods.FedAvg"),
    (lambda t: t.replace("values: [0.3, 0.5]", "values: [0.3, 0.3]"), "(entries)"),
    (lambda t: t + "baselines:\n  Local: {overrides: [baseline=local], per: round}\n", "baselines.Local.per"),
    (lambda t: t.replace("base.yaml", "nope.yaml"), "base"),
    (lambda t: t.replace("values: [0.3, 0.5]", "vals: [0.3]"), "scenarios.missing"),
    (lambda t: t.replace("seeds: [0, 1]", "seeds: []"), "seeds"),
    (lambda t: t + "nproc: 0\n", "nproc"),
    (lambda t: t + "jobs: two\n", "jobs"),
])
def test_validation_errors_name_the_key(tmp_path, edit, key):
    path = write_matrix(tmp_path, edit(SMALL))
    with pytest.raises(ConfigError) as err:
        expand(path)
    msg = str(err.value)
    assert str(path) in msg and f"{key}:" in msg, msg


def test_duplicate_names_between_method_and_baseline(tmp_path):
    path = write_matrix(tmp_path,
                        SMALL + "baselines:\n  FedAvg: {overrides: [baseline=local], per: setting}\n")
    with pytest.raises(ConfigError, match="share the name"):
        expand(path)


def test_schema_typo_fails_at_expansion_naming_the_entry(tmp_path):
    path = write_matrix(tmp_path, SMALL.replace("[fed.algorithm=fedavg]", "[fed.algoritm=fedavg]"))
    with pytest.raises(ConfigError) as err:
        expand(path)
    msg = str(err.value)
    assert "entry 0 (d/missing-beta0.3/FedAvg/seed0)" in msg and "algoritm" in msg
    path = write_matrix(tmp_path, SMALL.replace("seeds: [0, 1]", "seeds: [0, 1]\nseed_keys: [fed.sed]"))
    with pytest.raises(ConfigError, match="fed.sed"):
        expand(path)
    path = write_matrix(tmp_path, SMALL.replace("[fed.algorithm=fedavg]", "[fed.algorithm=fedsgd]"))
    with pytest.raises(ConfigError, match="fed.algorithm"):
        expand(path)
    assert len(expand(path, validate=False).entries) == 4


def _done(entry, accuracy=0.5):
    entry.run_dir.mkdir(parents=True, exist_ok=True)
    entry.results_path.write_text(json.dumps({"final": {"accuracy": accuracy}}))


def test_list_marks_done_entries(tmp_path, capsys):
    path = write_matrix(tmp_path, SMALL)
    m = expand(path)
    _done(m.entries[2])
    assert benchmark.main([str(path), "--list"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[-1]: line.split() for line in out.splitlines()[2:]}
    assert rows["d/missing-beta0.5/FedAvg/seed0"][:2] == ["2", "yes"]
    assert rows["d/missing-beta0.3/FedAvg/seed0"][:2] == ["0", "-"]
    assert "1 done" in out.splitlines()[0]
    assert format_table(m.entries).splitlines()[0].split() == ["index", "done", "name"]
    assert benchmark.main([str(path), "--list", "--only", "*seed1"]) == 0
    out = capsys.readouterr().out
    assert "seed0" not in out and out.count("seed1") == 2


def test_dry_run_prints_commands(tmp_path, capsys):
    path = write_matrix(tmp_path, SMALL)
    m = expand(path)
    _done(m.entries[0])
    assert benchmark.main([str(path), "--dry-run", "--nproc", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    commands = [line for line in out if not line.startswith("#")]
    assert len(commands) == 3 and "# [0] d/missing-beta0.3/FedAvg/seed0: done, skipped" in out
    assert "-m hpc_fed.cli launch --nproc 3 --config" in commands[0]
    assert "data.beta=0.3" in commands[0] and "fed.seed=1" in commands[0]
    assert commands[0].endswith(f"> {m.entries[1].log_path} 2>&1")
    assert not m.entries[1].run_dir.exists()  # nothing ran, nothing created
    assert benchmark.main([str(path), "--dry-run", "--index", "3"]) == 0  # matrix nproc 1: train
    out = capsys.readouterr().out
    assert "-m hpc_fed.cli train --config" in out and out.count("hpc_fed.cli") == 1


def test_index_out_of_range_and_no_match(tmp_path, capsys):
    path = write_matrix(tmp_path, SMALL)
    assert benchmark.main([str(path), "--index", "4"]) == 2
    assert "out of range" in capsys.readouterr().err
    assert benchmark.main([str(path), "--only", "zzz*"]) == 2
    assert benchmark.main([str(tmp_path / "missing.yaml"), "--list"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_select(full):
    assert [e.index for e in select(full.entries, index=7)] == [7]
    fedavg = select(full.entries, only="claims/*/FedAvg/*")
    assert len(fedavg) == 12 * 2 and all("/FedAvg/" in e.name for e in fedavg)
    assert select(full.entries, only="claims/*/FedAvg/*", index=0) == []
