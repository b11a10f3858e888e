"""Client halves of FL methods: proximal terms, the adaptive layer window, SCAFFOLD."""

import pytest
import torch

from hpc_fed.distributed.collectives import LocalComm
from hpc_fed.errors import ConfigError
from hpc_fed.fed.methods import build_method
from hpc_fed.fed.methods.scaffold import client_control_update, server_control_update
from hpc_fed.fed.payload import RoundPayload
from hpc_fed.fed.regularizers import ProximalTerm, decoder_layer, prox_weights


LM = "model.language_model"


def test_adaptive_window_on_a_real_peft_model(tiny_model_dir):
    from hpc_fed.config import LoraSettings, ModelConfig
    from hpc_fed.model.loading import apply_lora, load_base_model, trainable_parameters
    from hpc_fed.model.roles import module_roles

    base = load_base_model(ModelConfig(path=tiny_model_dir))
    roles = module_roles(base)
    assert roles.language == LM
    # LoRA on the vision encoder too: its numbered layers must stay outside the window
    model = apply_lora(base, LoraSettings(scope=["language", "vision"]), roles)
    names = [n for n, _ in trainable_parameters(model)]
    assert any("vision_tower" in n and ".layers.1." in n for n in names)
    w = prox_weights(names, "adaptive", mu=0.01, mu_w=0.1, s_layer=1, num_layers=4, language=LM)
    on = {decoder_layer(n, LM) for n, v in w.items() if v > 0}
    assert on == {1, 2}  # layers s..L-1-s of a 4-layer decoder
    assert all(v == pytest.approx(0.001) for v in w.values() if v > 0)
    assert all(w[n] == 0 for n in names if "multi_modal_projector" in n or "vision_tower" in n)
    assert all(decoder_layer(n, LM) is None for n in names if "projector" in n or "vision" in n)
    assert set(prox_weights(names, "prox", 0.01, 0.1, 1, 4).values()) == {0.01}


def test_paper_window_and_empty_window():
    names = [f"base_model.model.{LM}.layers.{i}.self_attn.q_proj.lora_A.default.weight"
             for i in range(28)] + ["base_model.model.model.vision_tower.encoder.layers.5.mlp.fc1.weight"]
    w = prox_weights(names, "adaptive", 0.01, 0.1, s_layer=4, num_layers=28, language=LM)
    assert [decoder_layer(n, LM) for n in names if w[n] > 0] == list(range(4, 24))
    with pytest.raises(ConfigError, match="fed.s_layer"):
        prox_weights(names, "adaptive", 0.01, 0.1, s_layer=4, num_layers=4, language=LM)


@pytest.mark.parametrize("language, name", [
    # Idefics3 / SmolVLM: the language model is `text_model`, its vision encoder also has
    # numbered `layers` (the old name heuristic only skipped names containing "vision")
    ("model.text_model",
     "base_model.model.model.text_model.layers.{i}.self_attn.q_proj.lora_A.default.weight"),
    # MiniCPM-V (trust_remote_code): a causal LM under `llm`, its layers under llm.model.layers
    ("llm", "base_model.model.llm.model.layers.{i}.self_attn.v_proj.lora_B.default.weight"),
])
def test_window_keyed_on_the_language_role(language, name):
    names = [name.format(i=i) for i in range(6)]
    others = ["base_model.model.model.encoder.layers.2.self_attn.q_proj.lora_A.default.weight",
              "base_model.model.vpm.encoder.layers.2.mlp.fc1.lora_A.default.weight",
              "base_model.model.model.connector.modules_to_save.default.modality_projection.proj.weight"]
    w = prox_weights(names + others, "adaptive", 0.01, 1.0, s_layer=1, num_layers=6, language=language)
    assert [decoder_layer(n, language) for n in names if w[n] > 0] == [1, 2, 3, 4]
    assert all(w[n] == 0 for n in others)


def test_adaptive_window_that_regularizes_nothing_is_refused():
    names = ["base_model.model.model.vision_tower.encoder.layers.1.self_attn.q_proj.lora_A.default.weight"]
    with pytest.raises(ConfigError, match="plain FedAvg"):
        prox_weights(names, "adaptive", 0.01, 0.1, s_layer=0, num_layers=4, language=LM)


def test_proximal_gradient_is_mu_times_distance():
    p = torch.tensor([1.0, 3.0], requires_grad=True)
    term = ProximalTerm({"x": 0.5}, {"x": torch.tensor([0.0, 1.0])})
    term([("x", p)]).backward()
    assert torch.allclose(p.grad, 0.5 * torch.tensor([1.0, 2.0]))


def test_scaffold_term_gradient_is_the_control_correction():
    method = build_method("scaffold", num_clients=4)
    method.buffers["c"] = {"x": torch.tensor([0.3, -0.1])}
    method.clients = {2: {"c": {"x": torch.tensor([0.1, 0.4])}}}
    (term,) = method.client_terms(2, {"x": torch.zeros(2)}, "cpu")
    p = torch.tensor([5.0, 7.0], requires_grad=True)
    term([("x", p)]).backward()
    assert torch.allclose(p.grad, torch.tensor([0.2, -0.5]))  # c - c_i


def test_scaffold_as_one_unit_through_the_round_payload():
    """Client extras -> one payload -> server_update: c_i and c as the paper's formulas."""
    method = build_method("scaffold", num_clients=4)
    w = {"x": torch.tensor([1.0, 1.0])}
    locals_ = {0: {"x": torch.tensor([0.0, 2.0])}, 3: {"x": torch.tensor([1.0, 0.0])}}
    payload = RoundPayload([0, 3], ["x"], w, method.extras)
    for c, local in locals_.items():
        payload.add(c, 1.0, {"x": local["x"] - w["x"]}, 0.1, 1, method.client_extras(c, w, local, 2, 0.5))
    new_w = method.server_update(w, payload.reduce(LocalComm(), contribute=True))
    # c_i+ = (w - w_i) / (K lr) with c = c_i = 0; c = sum of control deltas / N
    assert torch.allclose(method.clients[0]["c"]["x"], torch.tensor([1.0, -1.0]))
    assert torch.allclose(method.clients[3]["c"]["x"], torch.tensor([0.0, 1.0]))
    assert torch.allclose(method.buffers["c"]["x"], torch.tensor([0.25, 0.0]))
    assert torch.allclose(new_w["x"], torch.tensor([0.5, 1.0]))  # FedAvg of the two updates
    restored = build_method("scaffold", num_clients=4)
    restored.load_state_dict(method.state_dict())
    assert torch.equal(restored.clients[3]["c"]["x"], method.clients[3]["c"]["x"])


def _quadratic_fl(scaffold: bool, rounds=300, K=10, lr=0.05):
    """Two clients f_i(w) = a_i/2 (w - b_i)^2; the optimum of their mean is sum a_i b_i / sum a_i."""
    a, b = [1.0, 10.0], [0.0, 1.0]
    w, c = {"w": torch.tensor([5.0])}, {"w": torch.zeros(1)}
    c_i = [{"w": torch.zeros(1)} for _ in a]
    for _ in range(rounds):
        deltas, dcs = [], []
        for i in range(2):
            x = w["w"].clone()
            for _ in range(K):
                grad = a[i] * (x - b[i])
                if scaffold:
                    grad = grad + c["w"] - c_i[i]["w"]
                x = x - lr * grad
            new_ci = client_control_update(c_i[i], c, w, {"w": x}, K, lr)
            dcs.append({"w": new_ci["w"] - c_i[i]["w"]})
            c_i[i] = new_ci
            deltas.append({"w": x - w["w"]})
        w = {"w": w["w"] + (deltas[0]["w"] + deltas[1]["w"]) / 2}
        if scaffold:
            c = server_control_update(c, dcs, num_clients=2)
    return float(w["w"])


def test_scaffold_reaches_the_true_optimum_where_fedavg_drifts():
    optimum = (1.0 * 0.0 + 10.0 * 1.0) / 11.0
    assert abs(_quadratic_fl(scaffold=True) - optimum) < 1e-4
    assert abs(_quadratic_fl(scaffold=False) - optimum) > 0.05


def test_control_update_formula():
    c_i, c = {"x": torch.tensor([1.0])}, {"x": torch.tensor([0.5])}
    new = client_control_update(c_i, c, {"x": torch.tensor([2.0])}, {"x": torch.tensor([1.0])}, 4, 0.5)
    assert float(new["x"]) == pytest.approx(1.0 - 0.5 + (2.0 - 1.0) / 2.0)
    upd = server_control_update({"x": torch.tensor([0.0])}, [{"x": torch.tensor([1.0])},
                                                              {"x": torch.tensor([3.0])}], 10)
    assert float(upd["x"]) == pytest.approx(2 / 10 * 2.0)  # |S|/N * mean


def test_regularizers_need_the_whole_adapter():
    from hpc_fed.config import load_config

    assert load_config(None, ["fed.algorithm=fedprox"]).fed.regularizer == "prox"
    with pytest.raises(ConfigError, match="train.zero_stage"):
        load_config(None, ["fed.regularizer=adaptive", "train.zero_stage=3"])


def test_local_optimizer_choice():
    from hpc_fed.config import load_config

    assert load_config(None, ["train.optimizer=sgd"]).train.optimizer == "sgd"
    with pytest.raises(ConfigError, match="train.optimizer"):
        load_config(None, ["train.optimizer=lion"])
