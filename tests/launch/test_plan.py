"""Launch planning: a run config or a matrix entry resolved, the world layout checked (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import QUICK, SMOKE

from hpc_fed.errors import ConfigError
from hpc_fed.launch.plan import check_world, is_matrix, resolve


def test_resolve_a_run_config_and_a_matrix_entry():
    spec = resolve(QUICK, None, ["fed.rounds=3"])
    assert spec.train_args() == ["--config", QUICK, "fed.rounds=3"] and spec.index is None
    entry = resolve(SMOKE, 1)
    assert entry.name == "memes/missing-beta0.5/FedAvg/seed0" and entry.index == 1
    assert entry.config.endswith("offline_base.yaml") and "data.beta=0.5" in entry.overrides
    assert is_matrix(Path(SMOKE)) and not is_matrix(Path(QUICK))


@pytest.mark.parametrize("config, index, needle", [
    ("configs/nope.yaml", None, "does not exist"),
    (SMOKE, None, "sbatch --array=0-2"),
    (SMOKE, 3, "out of range"),
    (QUICK, 0, "not a benchmark matrix"),
])
def test_resolve_errors_say_what_to_do(config, index, needle):
    with pytest.raises(ConfigError, match=needle):
        resolve(config, index)


def test_check_world_layouts():
    assert "4 client group(s) x 1 rank(s)" in check_world(1, 2, 2)
    assert "2 client group(s) x 2 rank(s)" in check_world(2, 2, 2)  # one group per node
    assert "1 client group(s) x 4 rank(s)" in check_world(4, 2, 2)  # a group of whole nodes
    with pytest.raises(ConfigError, match="fed.ranks_per_client .3. does not divide"):
        check_world(3, 1, 2)
    with pytest.raises(ConfigError, match="span nodes unevenly"):
        check_world(2, 2, 3)  # world 6 divides, but ranks 2,3 would sit on two nodes
