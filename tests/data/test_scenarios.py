"""Scenario statistics: missing rate, exact cross-modal split, per-client hybrid presence."""

import pytest

from hpc_fed.data.partition import iid_partition
from hpc_fed.data.records import Record
from hpc_fed.data.scenarios import cross, hybrid, missing, modality_counts
from hpc_fed.errors import ConfigError

RECORDS = [Record(id=str(i), question="q?", answer="yes", options=("yes", "no"),
                  image=f"{i}.png", text=f"claim {i}") for i in range(4000)]
PARTS = iid_partition(len(RECORDS), 10, seed=0)


@pytest.mark.parametrize("beta", [0.3, 0.4, 0.5])
def test_missing_rates_match_beta_and_are_independent(beta):
    out = missing(RECORDS, beta, seed=1)
    n = len(out)
    no_text = sum(r.text is None for r in out) / n
    no_image = sum(r.image is None for r in out) / n
    neither = sum(r.text is None and r.image is None for r in out) / n
    assert abs(no_text - beta) < 0.03 and abs(no_image - beta) < 0.03
    assert abs(neither - beta * beta) < 0.03
    assert all(r.question == "q?" and r.options == ("yes", "no") for r in out)
    assert out == missing(RECORDS, beta, seed=1) and out != missing(RECORDS, beta, seed=2)


@pytest.mark.parametrize("k", [3, 5, 7])
def test_cross_has_exactly_k_image_only_clients(k):
    out, image_only = cross(RECORDS, PARTS, k, seed=4)
    assert len(image_only) == k
    kinds = [modality_counts(out, idx) for idx in PARTS]
    assert sum(c["image_only"] == len(idx) for c, idx in zip(kinds, PARTS)) == k
    assert sum(c["text_only"] == len(idx) for c, idx in zip(kinds, PARTS)) == 10 - k
    assert cross(RECORDS, PARTS, k, seed=4)[1] == image_only


def test_hybrid_presence_is_per_client_and_never_empty():
    out, keeps = hybrid(RECORDS, PARTS, p=0.6, seed=5)
    for (keep_image, keep_text), idx in zip(keeps, PARTS):
        c = modality_counts(out, idx)
        assert c["neither"] == 0
        if keep_image and keep_text:
            assert c["both"] == len(idx)
        elif keep_image or keep_text:
            assert c["image_only" if keep_image else "text_only"] == len(idx)
        else:
            assert c["image_only"] + c["text_only"] == len(idx) and min(c["image_only"], c["text_only"]) > 0
    # over many seeds, each modality is kept by about p of the clients
    draws = [k for s in range(200) for k in hybrid(RECORDS[:10], [[i] for i in range(10)], 0.7, s)[1]]
    assert abs(sum(i for i, _ in draws) / len(draws) - 0.7) < 0.03


def test_bad_scenario_parameters():
    with pytest.raises(ConfigError, match="beta"):
        missing(RECORDS, 1.5, 0)
    with pytest.raises(ConfigError, match="k"):
        cross(RECORDS, PARTS, 11, 0)
