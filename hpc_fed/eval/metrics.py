"""Metrics from option scores: pure functions, tested against hand computations."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def option_nll(loglik: torch.Tensor, label: int) -> float:
    """-log p(right option), with p normalised over the record's options."""
    return -float(torch.log_softmax(loglik, dim=0)[label])


def accuracy_counts(logliks: Sequence[torch.Tensor], labels: Sequence[int]) -> tuple[int, float]:
    """(number correct, summed -log p(correct option)) over the records; argmax ties -> first."""
    correct, nll = 0, 0.0
    for ll, y in zip(logliks, labels):
        correct += int(int(torch.argmax(ll)) == y)
        nll += option_nll(ll, y)
    return correct, nll


def _counts(confusion: torch.Tensor):
    """tp, support, predicted per class. A k x (k+1) matrix has a last column of replies that
    named no class (generation mode): they count in the support (misses), not as predictions."""
    confusion = confusion.double()
    k = confusion.shape[0]
    return confusion[:, :k].diag(), confusion.sum(1), confusion[:, :k].sum(0)


def f1_scores(confusion: torch.Tensor) -> dict[str, float]:
    """Macro- and weighted-F1 from a confusion matrix (rows = true class, cols = predicted;
    optionally a last column of invalid replies, see `_counts`).

    Classes that never occur as truth are left out of both averages; a class with no
    prediction and no truth has no F1. Weighted-F1 weights each class by its true count.
    `macro_f1_sklearn` is sklearn's f1_score(average="macro") as the FedMLLM reference calls it
    (no `labels=`): the mean over the classes that occur as truth or as a prediction, so a class
    predicted but never true adds an F1 of 0 (replies naming no class are not a class here).
    """
    tp, support, predicted = _counts(confusion)
    present = support > 0
    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), torch.zeros_like(tp))
    recall = tp / support.clamp(min=1)
    denom = precision + recall
    f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp(min=1e-300), torch.zeros_like(tp))
    if not bool(present.any()):
        return {"macro_f1": 0.0, "weighted_f1": 0.0, "macro_f1_sklearn": 0.0}
    seen = present | (predicted > 0)
    return {"macro_f1": float(f1[present].mean()),
            "weighted_f1": float((f1 * support)[present].sum() / support[present].sum()),
            "macro_f1_sklearn": float(f1[seen].mean())}


def binary_options(records) -> tuple[str, str] | None:
    """(negative, positive) when every record that has options has the same two, in the same
    order (the positive class is the last option), else None. Open-ended records are skipped, so
    a mixed set (closed yes/no questions beside open ones) still gets its binary metrics over
    its closed questions. One rule for both evaluation modes."""
    pair = None
    for r in records:
        if not r.options:
            continue
        if len(r.options) != 2 or (pair is not None and tuple(r.options) != pair):
            return None
        pair = tuple(r.options)
    return pair


def reference_auc(confusion: torch.Tensor, negative: int, positive: int) -> float:
    """The FedMLLM reference's "AUC" (eval_hateful.py): sklearn's roc_auc_score on hard
    predictions, 0 for the negative class, 1 for the positive, and 2 for a reply it cannot parse
    (its fallback index; the last column of a generation-mode confusion matrix). Without
    unparsed replies this is balanced accuracy, (TPR + TNR) / 2, not a ranking AUC: our `auc`
    ranks the option probabilities instead."""
    k = confusion.shape[0]
    invalid = confusion.shape[1] > k

    def scores(row: int) -> list[float]:
        return [float(confusion[row, negative]), float(confusion[row, positive]),
                float(confusion[row, k]) if invalid else 0.0]

    pos, neg = scores(positive), scores(negative)
    n_pos, n_neg = sum(pos), sum(neg)
    if not n_pos or not n_neg:
        return float("nan")
    above = sum(pos[a] * neg[b] for a in range(3) for b in range(3) if a > b)
    ties = sum(pos[a] * neg[a] for a in range(3))
    return (above + 0.5 * ties) / (n_pos * n_neg)


def per_class_report(confusion: torch.Tensor, classes) -> dict[str, dict]:
    """Per class: precision, recall, F1 and support (true count), from the confusion matrix."""
    tp, support, predicted = _counts(confusion)
    out = {}
    for i, c in enumerate(classes):
        p = float(tp[i] / predicted[i]) if predicted[i] > 0 else 0.0
        r = float(tp[i] / support[i]) if support[i] > 0 else 0.0
        out[c] = {"precision": round(p, 4), "recall": round(r, 4),
                  "f1": round(2 * p * r / (p + r), 4) if p + r > 0 else 0.0,
                  "support": int(support[i])}
    return out


def roc_auc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Binary ROC-AUC from scores (probability of the positive class), ties counted half.

    Equals the probability that a random positive scores above a random negative (the
    Mann-Whitney statistic), so it needs scores, not hard labels.
    """
    pos = [s for s, y in zip(scores, labels) if y == 1]
    neg = [s for s, y in zip(scores, labels) if y == 0]
    if not pos or not neg:
        return float("nan")
    s = torch.tensor(list(scores), dtype=torch.float64)
    ranks = torch.empty_like(s)
    order = torch.argsort(s)
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    y = torch.tensor(list(labels))
    rank_sum = float(ranks[y == 1].sum())
    return (rank_sum - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))
