"""FedMLLM's multimodal heterogeneity scenarios, applied to partitioned training records.

Pure and seeded: (records, client parts, parameter, seed) -> records with modalities removed
(`image` / `text` set to None), identical on every rank. Test sets stay full-modality.

  missing(beta)  each sample independently loses its text with probability beta and its image
                 with probability beta; one that loses both keeps only question and options.
  cross(k)       k of the N clients are image-only, the others text-only.
  hybrid(p)      each client keeps each modality with probability p, drawn once per client;
                 a client left with neither is image-only or text-only per sample.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from hpc_fed.data.records import Record
from hpc_fed.errors import ConfigError


def _drop(r: Record, image: bool, text: bool) -> Record:
    return dataclasses.replace(r, image=None if image else r.image, text=None if text else r.text)


def missing(records: Sequence[Record], beta: float, seed: int) -> list[Record]:
    if not 0 <= beta <= 1:
        raise ConfigError(f"missing-modality rate beta ({beta}) must be in [0, 1]")
    rng = np.random.default_rng([seed, 1])
    lose_text = rng.random(len(records)) < beta
    lose_image = rng.random(len(records)) < beta
    return [_drop(r, bool(i), bool(t)) for r, i, t in zip(records, lose_image, lose_text)]


def cross(records: Sequence[Record], parts: Sequence[Sequence[int]], k: int, seed: int):
    """Returns (records, sorted ids of the image-only clients)."""
    if not 0 <= k <= len(parts):
        raise ConfigError(f"cross-modal k ({k}) must be between 0 and the {len(parts)} clients")
    image_only = sorted(np.random.default_rng([seed, 2]).choice(len(parts), k, replace=False).tolist())
    out = list(records)
    for c, idx in enumerate(parts):
        for i in idx:
            out[i] = _drop(records[i], image=c not in image_only, text=c in image_only)
    return out, image_only


def hybrid(records: Sequence[Record], parts: Sequence[Sequence[int]], p: float, seed: int):
    """Returns (records, per client (keeps image, keeps text) as drawn)."""
    if not 0 <= p <= 1:
        raise ConfigError(f"hybrid keep probability p ({p}) must be in [0, 1]")
    rng = np.random.default_rng([seed, 3])
    keeps = [(bool(rng.random() < p), bool(rng.random() < p)) for _ in parts]
    out = list(records)
    for (keep_image, keep_text), idx in zip(keeps, parts):
        for i in idx:
            if keep_image or keep_text:
                out[i] = _drop(records[i], image=not keep_image, text=not keep_text)
            else:  # neither drawn: one modality per sample, so no sample is left empty
                image_only = bool(rng.random() < 0.5)
                out[i] = _drop(records[i], image=not image_only, text=image_only)
    return out, keeps


def modality_counts(records: Sequence[Record], idx: Sequence[int]) -> dict[str, int]:
    """Per client: how many samples hold both, only the image, only the text, or neither."""
    counts = {"both": 0, "image_only": 0, "text_only": 0, "neither": 0}
    for i in idx:
        r = records[i]
        key = {(True, True): "both", (True, False): "image_only", (False, True): "text_only",
               (False, False): "neither"}[(r.image is not None, r.text is not None)]
        counts[key] += 1
    return counts


# Each scenario and the data.* key of its heterogeneity parameter (the benchmark's settings
# and the report's labels derive from this; the only list of scenario names).
SCENARIO_PARAMS = {"aligned": "alpha", "missing": "beta", "cross": "k", "hybrid": "p"}
SCENARIOS = tuple(SCENARIO_PARAMS)


def apply_scenario(records: Sequence[Record], parts: Sequence[Sequence[int]], scenario: str,
                   beta: float, k: int, p: float, seed: int) -> tuple[list[Record], dict]:
    """The training records after `scenario`, and what was drawn (for partition.json)."""
    if scenario == "aligned":
        return list(records), {"scenario": "aligned"}
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


def test_view(records: Sequence[Record], name: str) -> list[Record]:
    """The test set as published (`full`) or with every image / every text removed."""
    drop_image, drop_text = VIEWS[name]
    return [_drop(r, drop_image, drop_text) for r in records]
