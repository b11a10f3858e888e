"""Metrics from option scores: pure functions, tested against hand computations."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def option_probabilities(logliks: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Normalise each record's option log-likelihoods into a distribution over its options."""
    return [torch.softmax(ll, dim=0) for ll in logliks]


def accuracy_counts(logliks: Sequence[torch.Tensor], labels: Sequence[int]) -> tuple[int, float]:
    """(number correct, summed -log p(correct option)) over the records; argmax ties -> first."""
    correct, nll = 0, 0.0
    for ll, y in zip(logliks, labels):
        correct += int(int(torch.argmax(ll)) == y)
        nll -= float(torch.log_softmax(ll, dim=0)[y])
    return correct, nll
