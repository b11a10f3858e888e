"""Numbers the README, docs/ and the scripts' headers state about shipped files, checked against
those files: a matrix that grows must not leave the stated entry counts and SLURM array ranges
behind."""

from __future__ import annotations

import re

import pytest
from cli_helpers import ROOT

from hpc_fed.benchmark.matrix import expand

PAGES = {str(p.relative_to(ROOT)): p.read_text()
         for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
                   *sorted((ROOT / "slurm").glob("*.sh")), *sorted((ROOT / "launchers").glob("*.sh"))]}
COUNT = r"hpc-fed benchmark --config (configs/benchmark/\S+\.yaml) --list\s+# (\d+) entries"
ARRAY = r"CONFIG=(configs/benchmark/\S+\.yaml) sbatch --array=0-(\d+)"


def _matrix_size(config: str) -> int:
    return len(expand(ROOT / config, validate=False).entries)


def _stated(pattern: str) -> list[tuple[str, str, str]]:
    return [(page, *match) for page, text in PAGES.items() for match in re.findall(pattern, text)]


@pytest.mark.parametrize("page, config, stated", _stated(COUNT))
def test_stated_entry_counts_match_the_matrix(page, config, stated):
    assert int(stated) == _matrix_size(config), f"{page} says {config} has {stated} entries"


@pytest.mark.parametrize("page, config, last", _stated(ARRAY))
def test_stated_slurm_arrays_cover_the_matrix(page, config, last):
    assert int(last) == _matrix_size(config) - 1, f"{page}'s --array=0-{last} for {config}"


def test_the_docs_state_some_counts():
    """The patterns above still find the stated lines (else the checks would pass vacuously)."""
    assert _stated(COUNT) and _stated(ARRAY)
