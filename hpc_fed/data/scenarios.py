"""FedMLLM's multimodal heterogeneity scenarios, applied to partitioned training records.

Pure and seeded: (records, client parts, parameter, seed) -> the same records with modalities
removed (`image` / `text` read as None), identical on every rank. What a scenario draws is a
pair of per-record masks on the record table (`RecordSet.with_modalities`): no record is copied.
Test sets stay full-modality.

  missing(beta)  each sample independently loses its text with probability beta and its image
                 with probability beta; one that loses both keeps only question and options.
  cross(k)       k of the N clients are image-only, the others text-only.
  hybrid(p)      each client keeps each modality with probability p, drawn once per client;
                 a client left with neither is image-only or text-only per sample.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hpc_fed.data.records import Record, RecordSet, as_record_set
from hpc_fed.errors import ConfigError


def missing(records: Sequence[Record], beta: float, seed: int) -> RecordSet:
    if not 0 <= beta <= 1:
        raise ConfigError(f"missing-modality rate beta ({beta}) must be in [0, 1]")
    rng = np.random.default_rng([seed, 1])
    lose_text = rng.random(len(records)) < beta
    lose_image = rng.random(len(records)) < beta
    return as_record_set(records).with_modalities(~lose_image, ~lose_text)


def cross(records: Sequence[Record], parts: Sequence[Sequence[int]], k: int, seed: int):
    """Returns (records, sorted ids of the image-only clients)."""
    if not 0 <= k <= len(parts):
        raise ConfigError(f"cross-modal k ({k}) must be between 0 and the {len(parts)} clients")
    image_only = sorted(np.random.default_rng([seed, 2]).choice(len(parts), k, replace=False).tolist())
    keep_image, keep_text = np.ones(len(records), bool), np.ones(len(records), bool)
    for c, idx in enumerate(parts):
        idx = np.asarray(idx, dtype=np.int64)
        keep_image[idx], keep_text[idx] = c in image_only, c not in image_only
    return as_record_set(records).with_modalities(keep_image, keep_text), image_only


def hybrid(records: Sequence[Record], parts: Sequence[Sequence[int]], p: float, seed: int):
    """Returns (records, per client (keeps image, keeps text) as drawn)."""
    if not 0 <= p <= 1:
        raise ConfigError(f"hybrid keep probability p ({p}) must be in [0, 1]")
    rng = np.random.default_rng([seed, 3])
    keeps = [(bool(rng.random() < p), bool(rng.random() < p)) for _ in parts]
    keep_image_at, keep_text_at = np.ones(len(records), bool), np.ones(len(records), bool)
    for (keep_image, keep_text), idx in zip(keeps, parts):
        for i in idx:
            if keep_image or keep_text:
                keep_image_at[i], keep_text_at[i] = keep_image, keep_text
            else:  # neither drawn: one modality per sample, so no sample is left empty
                image_only = bool(rng.random() < 0.5)
                keep_image_at[i], keep_text_at[i] = image_only, not image_only
    return as_record_set(records).with_modalities(keep_image_at, keep_text_at), keeps


def modality_counts(records: Sequence[Record], idx: Sequence[int]) -> dict[str, int]:
    """Per client: how many samples hold both, only the image, only the text, or neither."""
    records = as_record_set(records)
    chosen = records.select(idx)
    image = np.array([v is not None for v in chosen.column("image")], bool)
    text = np.array([v is not None for v in chosen.column("text")], bool)
    return {"both": int((image & text).sum()), "image_only": int((image & ~text).sum()),
            "text_only": int((~image & text).sum()), "neither": int((~image & ~text).sum())}


# Each scenario and the data.* key of its heterogeneity parameter (the benchmark's settings
# and the report's labels derive from this; the only list of scenario names).
SCENARIO_PARAMS = {"aligned": "alpha", "missing": "beta", "cross": "k", "hybrid": "p"}
SCENARIOS = tuple(SCENARIO_PARAMS)


def apply_scenario(records: Sequence[Record], parts: Sequence[Sequence[int]], scenario: str,
                   beta: float, k: int, p: float, seed: int) -> tuple[RecordSet, dict]:
    """The training records after `scenario`, and what was drawn (for partition.json)."""
    if scenario == "aligned":
        return as_record_set(records), {"scenario": "aligned"}
    if scenario == "missing":
        return missing(records, beta, seed), {"scenario": "missing", "beta": beta}
    if scenario == "cross":
        out, image_only = cross(records, parts, k, seed)
        return out, {"scenario": "cross", "k": k, "image_only_clients": image_only}
    if scenario == "hybrid":
        out, keeps = hybrid(records, parts, p, seed)
        return out, {"scenario": "hybrid", "p": p,
                     "client_keeps": [{"image": i, "text": t} for i, t in keeps]}
    raise ConfigError(f"data.scenario ({scenario!r}) is unknown; choose one of {SCENARIOS}")


# Test-set views (eval.modalities): name -> (drop images, drop texts); the only list of them.
VIEWS = {"full": (False, False), "no_image": (True, False), "no_text": (False, True)}


def test_view(records: Sequence[Record], name: str) -> RecordSet:
    """The test set as published (`full`) or with every image / every text removed."""
    drop_image, drop_text = VIEWS[name]
    return as_record_set(records).with_modalities(not drop_image, not drop_text)
