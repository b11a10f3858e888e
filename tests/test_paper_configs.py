"""configs/paper/: the FedMLLM reference's recipe, one config per dataset (issue 16, item 3)."""

from pathlib import Path

import pytest

from hpc_fed.config import load_config

ROOT = Path(__file__).parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
PAPER = {"hateful_memes": FIXTURES / "hateful_memes", "crisismmd": FIXTURES / "crisismmd",
         "medvqa": FIXTURES / "medvqa"}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_config_is_the_reference_recipe(name):
    cfg = load_config(str(ROOT / "configs" / "paper" / f"{name}.yaml"), [f"data.root={PAPER[name]}"])
    t, f, lora = cfg.train, cfg.fed, cfg.model.lora
    assert (t.lr, t.local_epochs, t.micro_batch_size, t.grad_accum) == (2e-5, 1, 1, 4)
    assert (t.weight_decay, list(t.adam_betas), t.local_schedule, t.local_warmup_ratio) == (
        0.1, [0.9, 0.95], "cosine", 0.01)
    assert (f.rounds, f.num_clients, f.sample_clients) == (50, 10, 2)
    assert (lora.r, lora.alpha, list(lora.target_modules)) == (8, 8, ["q_proj", "k_proj", "v_proj", "o_proj"])
    assert list(lora.modules_to_save) == ["projector", "embed_tokens"]
    assert cfg.data.prompt == "fedmllm" and cfg.eval.mode == "generation" and cfg.data.name == name
    assert cfg.model.path == "openbmb/MiniCPM-V-2_6" and cfg.model.trust_remote_code


def test_paper_config_without_a_data_root_names_the_key():
    from hpc_fed.errors import ConfigError

    with pytest.raises(ConfigError, match="data.root"):
        load_config(str(ROOT / "configs" / "paper" / "hateful_memes.yaml"), [])
