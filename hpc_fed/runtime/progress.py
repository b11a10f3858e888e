"""Rank 0's console view: a progress bar over rounds and one table row per round."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

# how the headline metric is called in the per-round column
SHORT = {"accuracy": "acc", "auc": "AUC", "macro_f1": "macro-F1", "exact_match": "EM"}


def _value(metrics: dict | None, metric: str) -> str:
    value = (metrics or {}).get(metric)
    return f"{value:.4f}" if isinstance(value, (int, float)) else "-"


class RoundTable:
    """`metric`: the dataset's headline metric (results.json's primary_metric), which the eval
    column and the final line show (AUC for Hateful Memes, macro-F1 for CrisisMMD, ...)."""

    def __init__(self, rounds: int, enabled: bool, metric: str = "accuracy"):
        self.enabled = enabled
        self.metric = metric
        label = f"eval {SHORT.get(metric, metric)}"
        self.header = (f"{'round':>5}  {'clients':<16} {'lr':>9}  {'train loss':>10}  {label:>12}  "
                       f"{'time s':>7}")
        self.bar = tqdm(total=rounds, desc="rounds", unit="round", disable=not enabled,
                        dynamic_ncols=True, leave=False)

    def write(self, line: str) -> None:
        if self.enabled:
            self.bar.write(line)

    def initial(self, metrics: dict | None) -> None:
        self.write(self.header)
        self.write(f"{'init':>5}  {'-':<16} {'-':>9}  {'-':>10}  {_value(metrics, self.metric):>12}  "
                   f"{'-':>7}")

    def add(self, row: dict) -> None:
        clients = ",".join(str(c["id"]) for c in row["clients"])
        self.write(f"{row['round']:>5}  {clients:<16} {row['lr']:>9.2e}  {row['train_loss']:>10.4f}"
                   f"  {_value(row['eval'], self.metric):>12}  {row['time']['round']:>7.1f}")
        self.bar.update(1)

    def close(self, results: dict, run_dir: Path) -> None:
        self.bar.close()
        init = results["initial"]
        self.write(f"{self.metric}: initial {_value(init, self.metric)} -> final "
                   f"{_value(results['final'], self.metric)}   "
                   f"({results['wall_seconds']} s; run directory {run_dir})")
