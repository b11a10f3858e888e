"""Each server optimizer against a hand computation over 3 rounds, on a two-tensor adapter."""

import math

import pytest
import torch

from hpc_fed.config import load_config
from hpc_fed.errors import ConfigError
from hpc_fed.fed.methods import build_method, method_from_config

# Per round, the averaged client delta for two tensors "a" (2 values) and "b" (1 value).
DELTAS = [{"a": [0.5, -1.0], "b": [2.0]}, {"a": [0.1, 0.3], "b": [-1.0]}, {"a": [-0.2, 0.4], "b": [0.5]}]
W0 = {"a": [1.0, 1.0], "b": [0.0]}
ETA, TAU, B1, B2 = 0.1, 0.01, 0.9, 0.99


def _t(d):
    return {k: torch.tensor(v, dtype=torch.float64) for k, v in d.items()}


def _run(name, **hp):
    opt, w, out = build_method(name, **hp), _t(W0), []
    for d in DELTAS:
        w = opt.step(w, _t(d))
        out.append({k: v.tolist() for k, v in w.items()})
    return out


def _hand(rule):
    """Elementwise over every value of every tensor, with plain floats."""
    out, state = [], {}
    w = {k: list(v) for k, v in W0.items()}
    for d in DELTAS:
        w = {k: [rule(state, (k, i), w[k][i], d[k][i]) for i in range(len(w[k]))] for k in w}
        out.append(w)
    return out


def _close(a, b):
    for ra, rb in zip(a, b):
        for k in ra:
            assert ra[k] == pytest.approx(rb[k], rel=1e-9, abs=1e-12), (k, ra, rb)


def _m(state, key, d, b1):
    state[key, "m"] = d if (key, "m") not in state else b1 * state[key, "m"] + (1 - b1) * d
    return state[key, "m"]


def test_fedavg_adds_the_average_delta():
    _close(_run("fedavg"), _hand(lambda s, key, w, d: w + d))


def test_fedavgm_first_round_momentum_is_the_delta():
    _close(_run("fedavgm", b1=B1), _hand(lambda s, key, w, d: w + _m(s, key, d, B1)))
    assert _run("fedavgm", b1=B1)[0]["b"] == [2.0]


def test_fedadagrad_v_starts_at_tau_squared():
    def rule(s, key, w, d):
        s[key, "v"] = s.get((key, "v"), TAU ** 2) + d * d
        return w + ETA * d / (math.sqrt(s[key, "v"]) + TAU)
    _close(_run("fedadagrad", eta=ETA, tau=TAU), _hand(rule))


def test_fedyogi():
    def rule(s, key, w, d):
        m = _m(s, key, d, B1)
        v = s.get((key, "v"), TAU ** 2)
        s[key, "v"] = v - (1 - B2) * m * m * math.copysign(1.0, v - m * m) if v != m * m else v
        return w + ETA * m / (math.sqrt(s[key, "v"]) + TAU)
    _close(_run("fedyogi", eta=ETA, tau=TAU, b1=B1, b2=B2), _hand(rule))


def test_fedadam():
    def rule(s, key, w, d):
        m = _m(s, key, d, B1)
        s[key, "v"] = B2 * s.get((key, "v"), TAU ** 2) + (1 - B2) * m * m
        return w + ETA * m / (math.sqrt(s[key, "v"]) + TAU)
    _close(_run("fedadam", eta=ETA, tau=TAU, b1=B1, b2=B2), _hand(rule))


@pytest.mark.parametrize("name", ["fedavg", "fedavgm", "fedadagrad", "fedyogi", "fedadam"])
def test_state_dict_round_trip_resumes_exactly(name):
    a = build_method(name)
    w = _t(W0)
    for d in DELTAS[:2]:
        w = a.step(w, _t(d))
    b = build_method(name)
    b.load_state_dict(a.state_dict())
    wa, wb = a.step(w, _t(DELTAS[2])), b.step(w, _t(DELTAS[2]))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_weighting_defaults_and_override():
    def weighting(name):
        return method_from_config(load_config(None, [f"fed.algorithm={name}"]).fed).weighting

    assert weighting("fedavgm") == "samples" and weighting("fedadam") == "uniform"
    cfg = load_config(None, ["fed.algorithm=fedadam", "fed.weighting=samples", "fed.server_lr=0.5"])
    opt = method_from_config(cfg.fed)
    assert opt.weighting == "samples" and opt.eta == 0.5


def test_bad_hyper_parameters_and_state_are_rejected():
    with pytest.raises(ConfigError, match="takes no hyper-parameter"):
        build_method("fedavg", eta=1.0)
    with pytest.raises(ConfigError, match="fed.algorithm"):
        build_method("fedadam").load_state_dict(build_method("fedyogi").state_dict())
