"""Rank 0's console table and the phase timers."""

from __future__ import annotations

import time
from pathlib import Path

from hpc_fed.runtime.progress import RoundTable
from hpc_fed.runtime.timing import PhaseTimer


def test_round_table_rows_and_final_line(capsys):
    table = RoundTable(2, enabled=True)
    table.initial({"accuracy": 0.5})
    table.add({"round": 0, "clients": [{"id": 3}, {"id": 7}], "lr": 1e-3, "train_loss": 0.6931,
               "eval": None, "time": {"round": 1.25}})
    table.add({"round": 1, "clients": [{"id": 1}], "lr": 5e-4, "train_loss": 0.5,
               "eval": {"accuracy": 0.75}, "time": {"round": 2.0}})
    table.close({"initial": {"accuracy": 0.5}, "final": {"accuracy": 0.75}, "wall_seconds": 3.3},
                Path("runs/x"))
    out = capsys.readouterr().out
    assert "round" in out and "3,7" in out and "0.6931" in out and "0.7500" in out
    assert "accuracy: initial 0.5000 -> final 0.7500" in out and "runs/x" in out


def test_the_table_names_the_datasets_headline_metric(capsys):
    table = RoundTable(1, enabled=True, metric="auc")
    table.initial({"accuracy": 0.5, "auc": 0.61})
    table.add({"round": 0, "clients": [{"id": 1}], "lr": 1e-3, "train_loss": 0.5,
               "eval": {"accuracy": 0.9, "auc": 0.7}, "time": {"round": 1.0}})
    table.close({"initial": {"auc": 0.61}, "final": {"auc": 0.7, "accuracy": 0.9}, "wall_seconds": 1},
                Path("r"))
    out = capsys.readouterr().out
    assert "eval AUC" in out and "0.7000" in out and "0.9000" not in out
    assert "auc: initial 0.6100 -> final 0.7000" in out


def test_a_disabled_table_prints_nothing(capsys):
    table = RoundTable(1, enabled=False)
    table.initial(None)
    table.close({"initial": None, "final": {"accuracy": 1.0}, "wall_seconds": 0}, Path("r"))
    assert capsys.readouterr().out == ""


def test_phase_timer_adds_up_repeated_phases():
    timer = PhaseTimer()
    for _ in range(2):
        with timer.phase("eval"):
            time.sleep(0.01)
    with timer.phase("round"):
        pass
    got = timer.rounded()
    assert set(got) == {"eval", "round"} and got["eval"] >= 0.02 and got["round"] < got["eval"]
