"""configs/paper/: the FedMLLM reference's recipe, one config per dataset; each starts with the
commands that run it: `hpc-fed download` (fetches MiniCPM-V 2.6 and prints the commit to pin),
then `hpc-fed launch ... model.revision=COMMIT`."""

import shlex
from pathlib import Path

import pytest
from cli_helpers import cli
from hub_helpers import COMMIT, hub_env

from hpc_fed.config import load_config
from hpc_fed.errors import ConfigError
from hpc_fed.model.hub import check_remote_code

ROOT = Path(__file__).parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
PAPER = {"hateful_memes": FIXTURES / "hateful_memes", "crisismmd": FIXTURES / "crisismmd",
         "medvqa": FIXTURES / "medvqa"}


def _commands(name: str) -> list[list[str]]:
    lines = (ROOT / "configs" / "paper" / f"{name}.yaml").read_text().splitlines()[:2]
    assert all(line.startswith("# hpc-fed ") for line in lines), lines
    return [shlex.split(line[2:]) for line in lines]


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


@pytest.mark.parametrize("name", sorted(PAPER))
def test_the_first_line_fetches_the_model_without_needing_the_data(name, tmp_path):
    download, _ = _commands(name)
    assert download == ["hpc-fed", "download", "--config", f"configs/paper/{name}.yaml"]
    proc = cli(*download[1:], "--dry-run", env=hub_env(tmp_path, offline=False))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("would fetch openbmb/MiniCPM-V-2_6 at the default branch (not pinned)")


@pytest.mark.parametrize("name", sorted(PAPER))
def test_the_second_line_runs_the_pinned_model(name):
    """`hpc-fed launch ... model.revision=COMMIT`: with the commit filled in (and the data where
    data.root says) the config loads and its remote code is pinned; without it, refused."""
    _, launch = _commands(name)
    assert launch[:6] == ["hpc-fed", "launch", "--nproc", "8", "--config", f"configs/paper/{name}.yaml"]
    overrides = [o.replace("COMMIT", COMMIT) for o in launch[6:] if not o.startswith("data.root=")]
    assert f"model.revision={COMMIT}" in overrides
    cfg = load_config(str(ROOT / launch[5]), [*overrides, f"data.root={PAPER[name]}"])
    m = cfg.model
    check_remote_code(m.path, m.trust_remote_code, m.revision, m.allow_unpinned_remote_code)
    with pytest.raises(ConfigError, match="model.revision is not set"):
        check_remote_code(m.path, m.trust_remote_code, "", m.allow_unpinned_remote_code)


def test_paper_config_without_a_data_root_names_the_key():
    with pytest.raises(ConfigError, match="data.root"):
        load_config(str(ROOT / "configs" / "paper" / "hateful_memes.yaml"), [])
