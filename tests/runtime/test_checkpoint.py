"""Round checkpoints: safetensors + JSON, atomic, pruned, read back exactly."""

from __future__ import annotations

import pytest
import torch

from hpc_fed.errors import ConfigError
from hpc_fed.fed.methods import build_method
from hpc_fed.runtime import checkpoint
from hpc_fed.runtime.owned import claim


def _scaffold_state():
    m = build_method("scaffold", num_clients=4)
    m.buffers["c"] = {"a.lora_A": torch.randn(2, 3)}
    m.clients = {0: {"c": {"a.lora_A": torch.randn(2, 3)}}, 7: {"c": {"a.lora_A": torch.randn(2, 3)}}}
    return m


def test_a_checkpoint_reads_back_bit_for_bit(tmp_path):
    method = _scaffold_state()
    adapter = {"a.lora_A": torch.randn(2, 3), "b.weight": torch.randn(4)}
    path = checkpoint.save(tmp_path, checkpoint.Checkpoint(3, adapter, method.state_dict(), {"x": 1}), keep=2)
    assert path.name == "round-000003"
    assert sorted(p.name for p in path.iterdir()) == ["adapter.safetensors", "method.safetensors",
                                                      "state.json"]
    got = checkpoint.load(path)
    assert got.round == 3 and got.meta["x"] == 1 and got.meta["method"] == "scaffold"
    assert all(torch.equal(got.adapter[k], v) for k, v in adapter.items())
    restored = build_method("scaffold", num_clients=4)
    restored.load_state_dict(got.method_state)
    assert torch.equal(restored.buffers["c"]["a.lora_A"], method.buffers["c"]["a.lora_A"])
    assert sorted(restored.clients) == [0, 7]
    assert torch.equal(restored.clients[7]["c"]["a.lora_A"], method.clients[7]["c"]["a.lora_A"])


def test_only_complete_checkpoints_count_and_the_newest_are_kept(tmp_path):
    claim(tmp_path / "run", "run", what="output.dir")  # checkpoints live in a run directory
    root = tmp_path / "run" / "checkpoints"
    state = build_method("fedavg").state_dict()
    for r in (1, 2, 3):
        checkpoint.save(root, checkpoint.Checkpoint(r, {"w": torch.ones(1) * r}, state, {}), keep=2)
    assert [p.name for p in checkpoint.complete(root)] == ["round-000002", "round-000003"]
    (root / "round-000009").mkdir()  # no state.json: a folder that was never completed
    (root / ".tmp-round-000004-abc").mkdir()  # a crash mid-write
    assert checkpoint.latest(root).name == "round-000003"
    checkpoint.prune(root, keep=2)
    assert not list(root.glob(".tmp-*"))


def test_checkpoints_outside_a_run_directory_hpc_fed_marked_are_never_removed(tmp_path):
    """A `checkpoints/` folder of someone else's (no hpc_fed.json beside it): pruning refuses."""
    root = tmp_path / "theirs" / "checkpoints"
    for r in (1, 2, 3):
        (root / checkpoint.folder_name(r)).mkdir(parents=True)
        (root / checkpoint.folder_name(r) / "state.json").write_text("{}")
    (root / ".tmp-keep").mkdir()
    with pytest.raises(ConfigError, match=r"round-000001 was not removed: .*theirs has no hpc_fed.json"):
        checkpoint.prune(root, keep=1)
    assert sorted(p.name for p in root.iterdir()) == [".tmp-keep", "round-000001", "round-000002",
                                                      "round-000003"]


def test_config_changes_name_the_keys():
    saved = {"fed": {"rounds": 4, "seed": 0}, "output": {"dir": "a"}, "world_size": 2}
    now = {"fed": {"rounds": 6, "seed": 0}, "output": {"dir": "b"}, "world_size": 4}
    assert checkpoint.config_changes(saved, now, ("output",)) == ["fed.rounds", "world_size"]
    assert checkpoint.config_changes(saved, now, ("output", "fed.rounds", "world_size")) == []
    assert checkpoint.flat_get(saved, "fed.rounds") == 4 and checkpoint.flat_get(saved, "fed.x") is None
