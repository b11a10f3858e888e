"""The one rule for CPU threads per rank (hpc_fed/launch/threads.py): cores / ranks of the launch,
or the user's OMP_NUM_THREADS; applied to children, never to the launching process."""

from __future__ import annotations

import os

import pytest

from hpc_fed.errors import HpcFedError
from hpc_fed.launch.threads import scoped_environ, thread_env, thread_source, threads_per_rank


@pytest.mark.parametrize("ranks,cores,threads", [(1, 2, 2), (2, 2, 1), (3, 2, 1), (4, 16, 4), (2, 1, 1)])
def test_cores_are_shared_out_over_the_ranks(ranks, cores, threads):
    assert threads_per_rank(ranks, cores=cores, environ={}) == threads
    assert thread_env(ranks, cores=cores, environ={}) == {"OMP_NUM_THREADS": str(threads)}


def test_the_users_threads_are_kept_for_every_rank_count():
    user = {"OMP_NUM_THREADS": "3"}
    assert [threads_per_rank(r, cores=8, environ=user) for r in (1, 2, 8)] == [3, 3, 3]
    assert threads_per_rank(2, cores=8, environ={"OMP_NUM_THREADS": "4,2"}) == 4  # nested: outer level
    assert "set by the user" in thread_source(user) and "OMP_NUM_THREADS=3" in thread_source(user)
    assert thread_source({}) == "cores / ranks of each run"


@pytest.mark.parametrize("bad", ["0", "two", "-1"])
def test_a_malformed_omp_num_threads_is_one_line_naming_it(bad):
    with pytest.raises(HpcFedError) as err:
        threads_per_rank(2, environ={"OMP_NUM_THREADS": bad})
    assert "OMP_NUM_THREADS" in str(err.value) and "\n" not in str(err.value)


def test_scoped_environ_restores_what_the_block_set_and_removed(monkeypatch):
    monkeypatch.setenv("HPC_FED_TEST_KEPT", "a")
    monkeypatch.delenv("HPC_FED_TEST_NEW", raising=False)
    before = dict(os.environ)
    with scoped_environ({"HPC_FED_TEST_NEW": "1", "HPC_FED_TEST_KEPT": "b"}):
        assert os.environ["HPC_FED_TEST_NEW"] == "1" and os.environ["HPC_FED_TEST_KEPT"] == "b"
        os.environ["HPC_FED_TEST_SET_INSIDE"] = "x"  # as torchrun sets OMP_NUM_THREADS in its agent
        del os.environ["HPC_FED_TEST_KEPT"]
    assert dict(os.environ) == before
