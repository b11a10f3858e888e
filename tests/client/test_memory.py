"""The model-state arithmetic behind docs/models.md's "how large a model fits" table."""

import pytest

from hpc_fed.client.memory import GIB, largest_model, model_states


def test_only_zero3_splits_the_base():
    for g in (1, 2, 4, 8):
        assert model_states(7e9, 3e7, stage=2, group_size=g).base == 14e9
        assert model_states(7e9, 3e7, stage=3, group_size=g).base == pytest.approx(14e9 / g)
    # the adapter's optimizer state is split from stage 1, its gradients from stage 2
    s0, s1, s2 = (model_states(0, 1e6, stage, 4) for stage in (0, 1, 2))
    assert (s0.optimizer, s1.optimizer, s1.gradients, s2.gradients) == (12e6, 3e6, 2e6, 0.5e6)


def test_readme_table():
    """The figures docs/models.md quotes (7B and 72B rows, an 80 GiB GPU with 16 GiB reserved)."""
    seven = [model_states(7.06e9, 3.0e7, 3, g, 2, 2.0e8).total / GIB for g in (1, 2, 4, 8)]
    assert [round(x, 1) for x in seven] == [13.6, 7.5, 4.1, 2.4]
    big = [model_states(72.7e9, 1.3e8, 3, g, 2, 0.9e9).total / GIB for g in (2, 4, 8)]
    assert [round(x, 1) for x in big] == [72.0, 37.7, 20.5]
    fits = [round(largest_model(80 * GIB, 16 * GIB, 3, g) / 1e9) for g in (1, 2, 4, 8)]
    assert fits == [33, 63, 121, 222]
