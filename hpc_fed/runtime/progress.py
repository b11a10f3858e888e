"""Rank 0's console view: a progress bar over rounds and one table row per round."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

HEADER = f"{'round':>5}  {'clients':<16} {'lr':>9}  {'train loss':>10}  {'eval acc':>8}  {'time s':>7}"


def _acc(metrics: dict | None) -> str:
    return f"{metrics['accuracy']:.4f}" if metrics else "-"


class RoundTable:
    def __init__(self, rounds: int, enabled: bool):
        self.enabled = enabled
        self.bar = tqdm(total=rounds, desc="rounds", unit="round", disable=not enabled,
                        dynamic_ncols=True, leave=False)

    def write(self, line: str) -> None:
        if self.enabled:
            self.bar.write(line)

    def initial(self, metrics: dict | None) -> None:
        self.write(HEADER)
        self.write(f"{'init':>5}  {'-':<16} {'-':>9}  {'-':>10}  {_acc(metrics):>8}  {'-':>7}")

    def add(self, row: dict) -> None:
        clients = ",".join(str(c["id"]) for c in row["clients"])
        self.write(f"{row['round']:>5}  {clients:<16} {row['lr']:>9.2e}  {row['train_loss']:>10.4f}"
                   f"  {_acc(row['eval']):>8}  {row['time']['round']:>7.1f}")
        self.bar.update(1)

    def close(self, results: dict, run_dir: Path) -> None:
        self.bar.close()
        init = results["initial"]
        self.write(f"accuracy: initial {_acc(init)} -> final {_acc(results['final'])}   "
                   f"({results['wall_seconds']} s; run directory {run_dir})")
