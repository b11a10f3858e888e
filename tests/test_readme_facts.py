"""Numbers the README states about shipped files, checked against those files: a matrix that
grows must not leave the README's entry counts and SLURM array ranges behind."""

from __future__ import annotations

import re

import pytest
from cli_helpers import ROOT

from hpc_fed.benchmark.matrix import expand

README = (ROOT / "README.md").read_text()


def _matrix_size(config: str) -> int:
    return len(expand(ROOT / config, validate=False).entries)


@pytest.mark.parametrize("config, stated", re.findall(
    r"hpc-fed benchmark --config (configs/benchmark/\S+\.yaml) --list\s+# (\d+) entries", README))
def test_stated_entry_counts_match_the_matrix(config, stated):
    assert int(stated) == _matrix_size(config), f"README.md says {config} has {stated} entries"


@pytest.mark.parametrize("config, last", re.findall(
    r"CONFIG=(configs/benchmark/\S+\.yaml) sbatch --array=0-(\d+)", README))
def test_stated_slurm_arrays_cover_the_matrix(config, last):
    assert int(last) == _matrix_size(config) - 1, f"README.md's --array=0-{last} for {config}"


def test_the_readme_states_some_counts():
    """The patterns above still find the README's lines (else the checks would pass vacuously)."""
    assert re.search(r"--list\s+# \d+ entries", README) and re.search(r"sbatch --array=0-\d+", README)
