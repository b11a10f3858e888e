"""Round checkpoints: safetensors + JSON, atomic, pruned, read back exactly."""

from __future__ import annotations

import torch

from hpc_fed.fed.methods import build_method
from hpc_fed.runtime import checkpoint


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
    state = build_method("fedavg").state_dict()
    for r in (1, 2, 3):
        checkpoint.save(tmp_path, checkpoint.Checkpoint(r, {"w": torch.ones(1) * r}, state, {}), keep=2)
    assert [p.name for p in checkpoint.complete(tmp_path)] == ["round-000002", "round-000003"]
    (tmp_path / "round-000009").mkdir()  # no state.json: a folder that was never completed
    (tmp_path / ".tmp-round-000004-abc").mkdir()  # a crash mid-write
    assert checkpoint.latest(tmp_path).name == "round-000003"
    checkpoint.prune(tmp_path, keep=2)
    assert not list(tmp_path.glob(".tmp-*"))


def test_config_changes_name_the_keys():
    saved = {"fed": {"rounds": 4, "seed": 0}, "output": {"dir": "a"}, "world_size": 2}
    now = {"fed": {"rounds": 6, "seed": 0}, "output": {"dir": "b"}, "world_size": 4}
    assert checkpoint.config_changes(saved, now, ("output",)) == ["fed.rounds", "world_size"]
    assert checkpoint.config_changes(saved, now, ("output", "fed.rounds", "world_size")) == []
    assert checkpoint.flat_get(saved, "fed.rounds") == 4 and checkpoint.flat_get(saved, "fed.x") is None
