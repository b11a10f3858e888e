"""`hpc-fed download`: its plan and its checks. The download itself needs the Hub, which these
tests never reach (the endpoint is a closed local port): they cover what it would fetch, where,
and the one-line failures where it cannot."""

from __future__ import annotations

import time

import pytest
from cli_helpers import QUICK, ROOT, cli
from hub_helpers import COMMIT, hub_cache, hub_env

PAPER = ROOT / "configs" / "paper" / "hateful_memes.yaml"


@pytest.fixture
def env(tmp_path):
    return hub_env(tmp_path, offline=False)


def test_the_plan_of_a_paper_config_needs_no_data_and_no_network(env):
    proc = cli("download", "--config", str(PAPER), "--dry-run", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (f"would fetch openbmb/MiniCPM-V-2_6 at the default branch (not pinned) "
                                   f"into {env['HF_HUB_CACHE']}")


def test_the_plan_names_a_cached_snapshot(tiny_model_dir, tmp_path, env):
    hub_cache(tmp_path / "hub", "hpcfed/tiny-llava", tiny_model_dir)
    proc = cli("download", "--config", QUICK, "model.path=hpcfed/tiny-llava", f"model.revision={COMMIT}",
               "--dry-run", env={**env, "HF_HUB_CACHE": str(tmp_path / "hub")})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith(f"in the cache already (commit {COMMIT})")


@pytest.mark.parametrize("offline, problem", [
    (False, "http://127.0.0.1:9 does not answer: run hpc-fed download on a machine with internet"),
    (True, "HF_HUB_OFFLINE=1 is set: downloading needs the network")])
def test_without_the_network_it_fails_in_seconds_in_one_line(env, offline, problem):
    start = time.time()
    proc = cli("download", "--config", QUICK, "model.path=hpcfed/some-model",
               env={**env, "HF_HUB_OFFLINE": "1" if offline else "0"})
    assert proc.returncode == 2 and time.time() - start < 60
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"hpc-fed download: error: {problem}")


def test_local_models_need_no_download(tiny_model_dir, env):
    for path, says in (("tiny", "built locally on first use"), (tiny_model_dir, "is a folder here")):
        proc = cli("download", "--config", QUICK, f"model.path={path}", env=env)
        assert proc.returncode == 0 and says in proc.stdout and "nothing to download" in proc.stdout


def test_a_dataset_copy_names_its_folder(tmp_path, env):
    proc = cli("download", "--dataset", "org/data", env=env)
    assert proc.returncode == 2 and "--dataset needs --local-dir DIR" in proc.stderr
    proc = cli("download", "--dataset", "org/data", "--local-dir", str(tmp_path / "d"), "--dry-run", env=env)
    assert proc.returncode == 0 and proc.stdout.strip() == (
        f"would copy the Hub dataset org/data into {tmp_path / 'd'}")
