"""Baselines (zero-shot, local, centralized) on real gloo ranks, in the run-directory format."""

from __future__ import annotations

import pytest
from distributed_helpers import cpu_choice, spawn, tiny_run_config


def _baselines_worker(rank, world, model_dir, out_dir):
    from hpc_fed.distributed import build_topology
    from hpc_fed.config import client_group_size
    from hpc_fed.runs import run_class

    for name, extra in [("zero_shot", ()), ("local", ()), ("local", ("fed.local_client=3",)),
                        ("centralized", ("data.scenario=cross", "data.k=2"))]:
        tag = name + ("_one" if name == "local" and extra else "")
        cfg = tiny_run_config(model_dir, f"{out_dir}/{tag}", 2, 1,
                   extra=(f"baseline={name}", "eval.every=0", "output.save_adapter=false", *extra))
        topo = build_topology(client_group_size(cfg, world), cpu_choice())  # as hpc_fed.train.main
        run_class(cfg.baseline)(cfg, topo).run()


def test_baselines_complete_in_the_run_directory_format(tiny_model_dir, tmp_path):
    import json

    spawn(_baselines_worker, 2, tmp_path, tiny_model_dir, str(tmp_path))

    def read(tag):
        res = json.loads((tmp_path / tag / "results.json").read_text())
        rows = [json.loads(x) for x in (tmp_path / tag / "metrics.jsonl").read_text().splitlines()]
        return res, rows

    res, rows = read("zero_shot")
    assert res["baseline"] == "zero_shot" and res["final"] == res["initial"] and rows == []
    res, rows = read("local")
    assert sorted(res["clients"]) == ["0", "1", "2", "3"] and len(rows) == 2
    accs = [c["accuracy"] for c in res["clients"].values()]
    assert res["final"]["accuracy"] == pytest.approx(sum(accs) / 4)
    assert all(c["samples"] == 24 for c in res["clients"].values())
    res, rows = read("local_one")
    assert list(res["clients"]) == ["3"] and [c["id"] for c in rows[0]["clients"]] == [3]
    res, rows = read("centralized")
    assert res["client_groups"] == 1 and res["world_size"] == 2 and len(rows) == 2
    (only,) = rows[0]["clients"]
    assert only["id"] == 0 and only["group"] == 0 and only["samples"] == 96
    cfg_text = (tmp_path / "centralized" / "config.yaml").read_text()
    assert "local_steps: 6" in cfg_text  # 3 sampled clients x 2 local steps
    # the scenario is drawn on the FL partition (2 of 4 clients image-only), then pooled
    part = json.loads((tmp_path / "centralized" / "partition.json").read_text())
    assert len(part["image_only_clients"]) == 2 and len(part["clients"]) == 1
    mods = part["clients"][0]["modalities"]
    assert mods["image_only"] > 0 and mods["neither"] > 0 and mods["both"] == 0
