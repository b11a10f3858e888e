import pytest
import torch
from reference import weighted_mean

from hpc_fed.distributed.collectives import LocalComm
from hpc_fed.errors import AggregationError, ConfigError
from hpc_fed.fed.aggregate import delta, flatten, unflatten
from hpc_fed.fed.methods import build_method
from hpc_fed.fed.payload import RoundPayload


def _state(a, b):
    return {"layer.0.lora_A": torch.tensor(a, dtype=torch.float32),
            "layer.1.lora_B": torch.tensor(b, dtype=torch.float32)}


def test_fedavg_of_multi_tensor_adapters_matches_hand_computation():
    g = _state([1.0, 1.0], [[1.0], [1.0]])
    clients = [_state([2.0, 2.0], [[2.0], [2.0]]), _state([4.0, 4.0], [[4.0], [4.0]])]
    mean = weighted_mean([delta(c, g) for c in clients], [1, 1])
    new = build_method("fedavg").step(g, mean)
    # every tensor, not only the first, is the plain average [3, 3]
    assert torch.equal(new["layer.0.lora_A"], torch.tensor([3.0, 3.0]))
    assert torch.equal(new["layer.1.lora_B"], torch.tensor([[3.0], [3.0]]))
    weighted = build_method("fedavg").step(g, weighted_mean([delta(c, g) for c in clients], [3, 1]))
    assert torch.allclose(weighted["layer.1.lora_B"], torch.tensor([[2.5], [2.5]]))


def test_flatten_roundtrip_keeps_order_and_shapes():
    s = _state([1.0, 2.0], [[3.0], [4.0]])
    names = list(s)
    flat = flatten(s, names)
    assert flat.tolist() == [1.0, 2.0, 3.0, 4.0]
    back = unflatten(flat, s, names)
    assert all(torch.equal(back[k], s[k]) for k in s)


def test_bad_contributions_are_rejected():
    g = _state([1.0, 1.0], [[1.0], [1.0]])
    with pytest.raises(AggregationError, match="shape"):
        weighted_mean([g, {"layer.0.lora_A": torch.zeros(3), "layer.1.lora_B": torch.zeros(2, 1)}], [1, 1])
    with pytest.raises(AggregationError, match="keys"):
        weighted_mean([g, {"layer.0.lora_A": torch.zeros(2)}], [1, 1])
    with pytest.raises(AggregationError, match="finite"):
        weighted_mean([g, g], [1, float("nan")])
    with pytest.raises(AggregationError, match="sum to 0"):
        weighted_mean([g], [0])


def test_round_payload_in_a_world_of_one_is_the_weighted_mean_with_stats_and_extras():
    g = _state([0.0, 0.0], [[0.0], [0.0]])
    d1, d2 = _state([1.0, 2.0], [[3.0], [4.0]]), _state([3.0, 2.0], [[1.0], [0.0]])
    payload = RoundPayload([5, 9, 7], list(g), g, extras=("control",))
    payload.add(9, 3.0, d2, 0.25, 3, {"control": d1})
    payload.add(5, 1.0, d1, 0.5, 1, {"control": d2})
    red = payload.reduce(LocalComm(), contribute=True)
    ref = weighted_mean([d1, d2], [1, 3])
    assert all(torch.allclose(red.mean_delta[k], ref[k]) for k in g)
    assert red.client_samples == {5: 1, 9: 3, 7: 0} and red.client_loss == {5: 0.5, 9: 0.25, 7: 0.0}
    assert all(torch.equal(red.extras["control"][9][k], d1[k]) for k in g)
    assert all(torch.equal(red.extras["control"][5][k], d2[k]) for k in g)
    assert all(float(t.abs().sum()) == 0 for t in red.extras["control"][7].values())


def test_round_payload_rejects_a_bad_contribution_before_the_collective():
    g = _state([0.0, 0.0], [[0.0], [0.0]])
    payload = RoundPayload([1], list(g), g)
    with pytest.raises(AggregationError, match="client 1: .*NaN"):
        payload.add(1, 1.0, _state([float("nan"), 0.0], [[0.0], [0.0]]), 0.1, 2)
    with pytest.raises(AggregationError, match="client 1: .*shape"):
        payload.add(1, 1.0, _state([0.0, 0.0, 1.0], [[0.0], [0.0]]), 0.1, 2)
    with pytest.raises(AggregationError, match="total weight"):
        RoundPayload([1], list(g), g).reduce(LocalComm(), contribute=True)


def test_unknown_server_optimizer_names_the_key():
    with pytest.raises(ConfigError, match="fed.algorithm"):
        build_method("fedfoo")
