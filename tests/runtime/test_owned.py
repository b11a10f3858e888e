"""What hpc_fed may replace or remove: only folders and files it wrote, as its marker (or the
file's own content) says."""

from __future__ import annotations

import json

import pytest

from hpc_fed.errors import ConfigError
from hpc_fed.runtime.owned import (
    MARKER,
    claim,
    claim_problem,
    folder_kind,
    json_with,
    remove_owned,
    replace_problem,
    starts_with,
    write_new_or_owned,
)


def test_claim_marks_new_and_empty_folders_and_refuses_others(tmp_path):
    claim(tmp_path / "new", "eval", what="output.dir")
    assert json.loads((tmp_path / "new" / MARKER).read_text())["kind"] == "eval"
    claim(tmp_path / "new", "eval", what="output.dir")  # its own kind again: fine
    (tmp_path / "empty").mkdir()
    assert claim_problem(tmp_path / "empty", "run", what="output.dir") is None
    assert "holds an evaluation (hpc-fed eval)" in claim_problem(tmp_path / "new", "run", what="output.dir")
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "thesis.tex").write_text("mine")
    with pytest.raises(ConfigError, match=r"output.dir .*user holds files hpc_fed did not write"):
        claim(tmp_path / "user", "run", what="output.dir")
    assert [p.name for p in (tmp_path / "user").iterdir()] == ["thesis.tex"]
    (tmp_path / "user" / MARKER).write_text("not json")  # a user's own file of that name
    assert folder_kind(tmp_path / "user") is None
    (tmp_path / "file").write_text("x")
    assert "is a file, not a folder" in claim_problem(tmp_path / "file", "run", what="output.dir")


def test_an_older_run_directory_is_kind_run_and_gets_the_marker(tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.yaml").write_text("a: 1\n")
    (old / "metrics.jsonl").write_text("")
    assert folder_kind(old) == "run"
    assert "holds a training run" in claim_problem(old, "eval", what="output.dir")
    claim(old, "run", what="output.dir")
    assert json.loads((old / MARKER).read_text()) == {"written_by": "hpc_fed", "kind": "run"}


def test_remove_owned_needs_the_marker_and_never_follows_a_link(tmp_path):
    mine = tmp_path / "mine"
    (mine / "theirs").mkdir(parents=True)
    (mine / "theirs" / "precious.txt").write_text("keep")
    with pytest.raises(ConfigError, match=r"theirs was not removed: .*mine has no hpc_fed.json"):
        remove_owned(mine / "theirs", owner=mine)
    with pytest.raises(ValueError, match="is not inside"):
        remove_owned(tmp_path / "elsewhere", owner=mine)
    claim(tmp_path / "run", "run", what="output.dir")
    (tmp_path / "run" / "adapter").symlink_to(mine / "theirs")  # a link to a user's folder
    remove_owned(tmp_path / "run" / "adapter", owner=tmp_path / "run")
    assert not (tmp_path / "run" / "adapter").exists() and (mine / "theirs" / "precious.txt").exists()
    (tmp_path / "run" / "checkpoints" / "round-000001").mkdir(parents=True)
    remove_owned(tmp_path / "run" / "checkpoints", owner=tmp_path / "run")
    remove_owned(tmp_path / "run" / "results.json", owner=tmp_path / "run")  # absent: nothing
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [MARKER]


def test_a_single_file_is_replaced_only_when_hpc_fed_wrote_it(tmp_path):
    ours = json_with("dataset", "clients")
    path = tmp_path / "partition.json"
    write_new_or_owned(path, json.dumps({"dataset": "a", "clients": []}), ours, what="--json")
    write_new_or_owned(path, json.dumps({"dataset": "b", "clients": []}), ours, what="--json")
    assert json.loads(path.read_text())["dataset"] == "b"
    config = tmp_path / "quickstart.yaml"  # a mistyped --json
    config.write_text("fed:\n  rounds: 8\n")
    with pytest.raises(ConfigError, match=r"--json .*quickstart.yaml exists and is not a file hpc_fed wrote"):
        write_new_or_owned(config, "{}", ours, what="--json")
    assert config.read_text() == "fed:\n  rounds: 8\n"
    assert replace_problem(tmp_path / "absent.json", ours, what="--json") is None
    (tmp_path / "list.json").write_text("[]")
    assert replace_problem(tmp_path / "list.json", ours, what="--json") is not None
    (tmp_path / "a.png").write_bytes(b"\x89PNG....tEXtSoftware\x00Matplotlib version3")
    assert starts_with(b"Matplotlib", within=256)(tmp_path / "a.png")
    assert not starts_with(b"# title\n")(tmp_path / "a.png")


def test_data_describe_json_replaces_only_a_partition_it_wrote(tmp_path, capsys):
    from cli_helpers import QUICK

    from hpc_fed.cli import main

    out = tmp_path / "partition.json"
    args = ["data", "describe", "--config", QUICK, "data.max_train_samples=40", "fed.num_clients=2",
            "fed.sample_clients=2"]
    assert main([*args, "--json", str(out)]) == 0
    assert main([*args, "--json", str(out)]) == 0  # its own: replaced
    assert json.loads(out.read_text())["dataset"] == "easyvqa"
    config = tmp_path / "quickstart.yaml"
    config.write_text("fed:\n  rounds: 8\n")
    assert main([*args, "--json", str(config)]) == 2
    assert "--json " + str(config) + " exists and is not a file hpc_fed wrote" in capsys.readouterr().err
    assert config.read_text() == "fed:\n  rounds: 8\n"
