"""`hpc-fed bench`: the arithmetic, and one real measured run on 2 ranks with the
one-group and the sequential Trainer-loop comparisons. Figures are not asserted (they belong in
docs/performance.md), only that every phase is measured and the parts add up to the round."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest
from cli_helpers import QUICK, cli

from hpc_fed.bench.stats import PHASES, cpu_split, split_round, summarize, thread_cpu_seconds


def test_phases_add_up_to_the_round():
    timer = {"round": 2.0, "local_train": 1.5, "aggregate": 0.3, "eval": 0.1}
    s = split_round(timer, compute=1.2, data=0.2, wait=0.25, checkpoint=0.05)
    assert s["wall"] == pytest.approx(2.05)
    assert s["aggregate"] == pytest.approx(0.05) and s["local_other"] == pytest.approx(0.1)
    assert sum(s[p] for p in PHASES) == pytest.approx(s["wall"])


def test_cpu_time_is_split_into_main_monitor_and_other_threads():
    before = {10: 1.0, 11: 0.5, 12: 2.0}
    after = {10: 2.0, 11: 0.6, 12: 2.5, 13: 0.3}  # 13 started in between
    split = cpu_split(before, after, 1.2, main=10, monitor=11)
    assert split == pytest.approx({"main": 1.0, "monitor": 0.1, "other": 0.8, "wall": 1.2})
    assert cpu_split(before, after, 1.2, main=10, monitor=None)["other"] == pytest.approx(0.9)


def test_thread_cpu_seconds_counts_a_busy_thread():
    if not os.path.isdir("/proc/self/task"):
        pytest.skip("no /proc")
    ids = []

    def spin():  # until this thread has used 0.2 s of CPU, however loaded the machine
        ids.append(threading.get_native_id())
        while time.thread_time() < 0.2:
            pass
        done.wait()

    done = threading.Event()
    before = thread_cpu_seconds()
    worker = threading.Thread(target=spin)
    worker.start()
    deadline = time.monotonic() + 60
    while (not ids or thread_cpu_seconds().get(ids[0], 0.0) < 0.19) and time.monotonic() < deadline:
        time.sleep(0.01)
    used = thread_cpu_seconds()[ids[0]] - before.get(ids[0], 0.0)
    done.set()
    worker.join()
    assert 0.19 <= used < 5


def test_summary_leaves_the_warm_up_round_out():
    def rank(wall, compute):
        return {"wall": wall, "compute": compute, "data": 0, "local_other": 0, "wait": wall - compute,
                "aggregate": 0, "eval": 0, "checkpoint": 0, "rest": 0, "micro_batches": 10,
                "samples": 80, "tokens": 8000}

    rounds = [[rank(9.0, 1.0), rank(9.0, 1.0)], [rank(2.0, 1.8), rank(2.0, 1.0)],
              [rank(2.0, 1.8), rank(2.0, 1.0)]]
    s = summarize(rounds)
    assert s["rounds_measured"] == 2 and s["round_seconds"]["median"] == 2.0
    assert s["round_efficiency"] == pytest.approx(1.4 / 2.0)  # the mean rank's compute / wall
    assert s["samples_per_second"] == pytest.approx(320 / 4.0)
    assert s["step_seconds"] == pytest.approx(5.6 / 40)


def test_bench_measures_two_groups_against_one(tiny_model_dir, tmp_path, monkeypatch):
    """On 2 cores, every variant gets both: 2 ranks x 1 thread, one rank (a group of one, the
    sequential loop) x 2, whatever ran before it (2 interleaved repetitions)."""
    cpus = sorted(os.sched_getaffinity(0))[:2]
    if len(cpus) < 2:
        pytest.skip("needs 2 usable CPUs")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    out = tmp_path / "bench"
    proc = cli("bench", "--config", QUICK, "--nproc", "2", "--rounds", "2", "--repeats", "2",
               "--compare-groups", "--compare-sequential",
               f"model.path={tiny_model_dir}", "train.local_steps=2", "train.micro_batch_size=4",
               "data.max_train_samples=64", "data.max_test_samples=16", "eval.batch_size=16",
               "fed.sample_clients=2", "eval.initial=false", "output.save_adapter=false",
               f"output.dir={out}", timeout=900, cpus=set(cpus))
    assert proc.returncode == 0, proc.stderr[-3000:]
    for k in (0, 1):
        threads = {name: json.loads((out / f"{name}-{k}" / "bench.json").read_text())["setup"]
                   for name in ("groups", "one_group")}
        threads["sequential"] = json.loads((out / f"sequential-{k}.json").read_text())
        assert {name: (s["torch_threads"], s["cores"]) for name, s in threads.items()} == {
            "groups": (1, 2), "one_group": (2, 2), "sequential": (2, 2)}, k
    summary = json.loads((out / "bench.json").read_text())
    assert summary["threads"] == {"source": "cores / ranks of each run", "cores": [2]}
    assert summary["variants"]["one_group"]["torch_threads"] == [2]
    assert "1 x 2" in proc.stdout and "2 x 1" in proc.stdout  # the table's processes x threads
    assert set(summary["variants"]) == {"groups", "one_group"} and summary["groups_speedup"] > 0
    # the FedMLLM-style loop ran the same rounds, nearly all of its time inside trainer.train
    seq = json.loads((out / "sequential-0.json").read_text())
    assert len(seq["rounds"]) == 2 and 0.5 < seq["share_in_trainer_train"] <= 1
    assert set(summary["speedup_vs_sequential"]) == {"groups", "one_group"}
    run = json.loads((out / "groups-0" / "bench.json").read_text())
    assert run["setup"]["client_groups"] == 2 and run["rounds_measured"] == 1
    for key in ("round_efficiency", "step_efficiency", "aggregation_over_floor", "samples_per_second",
                "tokens_per_second", "plain_step_seconds"):
        assert run[key] is not None and run[key] > 0, key
    assert 0 < run["round_efficiency"] <= 1
    for r in run["per_round"]:
        # the phases cover the round; a loaded machine (a benchmark beside the tests) leaves up to
        # ~60 ms between the phase timers of a sub-second round
        assert sum(r[p] for p in PHASES) == pytest.approx(r["wall"], rel=0.05, abs=0.1)
        assert len(r["groups_local"]) == 2
    assert {m["rank"] for m in run["memory"]} == {0, 1}
    # each rank's local training by thread: its main thread did (most of) the work
    cpu = run["local_training_cpu"]
    assert [c["rank"] for c in cpu] == [0, 1] and all(c["main"] > 0 and c["wall"] > 0 for c in cpu)
    assert all(c["monitor"] >= 0 and c["other"] >= 0 for c in cpu)
    assert all(m["peak_rss_bytes"] > 0 for m in run["memory"])
    once = set(run["one_time_seconds"])
    assert {"imports", "init_distributed", "data", "model_load", "engine_build"} <= once
    one = json.loads((out / "one_group-0" / "bench.json").read_text())
    assert one["setup"]["world_size"] == 1
    # the run directory is a normal one: its config and per-round metrics are there
    assert (out / "groups-0" / "config.yaml").is_file()
    assert len((out / "groups-0" / "metrics.jsonl").read_text().splitlines()) == 2
    assert "groups_speedup" in proc.stdout


def test_record_index_bench_measures_both_forms():
    from hpc_fed.bench.records import build

    listed, table = build("list", 3000), build("recordset", 3000)
    assert listed["records"] == table["records"] == 3000 and listed["batch"] == table["batch"] == 16
    assert table["arrow_mib"] > 0 and "arrow_mib" not in listed
    assert isinstance(listed["index_mib"], float) and isinstance(table["index_mib"], float)
