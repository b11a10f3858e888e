"""The shipped smoke matrix end to end: `hpc-fed benchmark --local`, then `hpc-fed report`."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_smoke_matrix_runs_skips_done_entries_and_reports(tiny_model_dir, tmp_path):
    spec = yaml.safe_load((ROOT / "configs/benchmark/smoke.yaml").read_text())
    spec["base"] = str(ROOT / spec["base"])
    spec["overrides"] = [*spec["overrides"], f"model.path={tiny_model_dir}"]
    spec["output_root"] = str(tmp_path / "bench")
    matrix = tmp_path / "smoke.yaml"
    matrix.write_text(yaml.safe_dump(spec))

    def hpc_fed(*args):
        return subprocess.run([sys.executable, "-m", "hpc_fed.cli", *args], capture_output=True,
                              text=True, timeout=600, cwd=ROOT)

    proc = hpc_fed("benchmark", str(matrix), "--local")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = sorted(p.parent for p in (tmp_path / "bench").rglob("results.json"))
    assert len(runs) == 3
    for run in runs:
        results = json.loads((run / "results.json").read_text())
        assert results["tags"]["dataset"] == "memes" and "auc" in results["final"]
        assert set(results["final"]["views"]) == {"no_image", "no_text"}
    fedavg = json.loads((tmp_path / "bench/memes/missing-beta0.5/FedAvg/seed0/partition.json")
                        .read_text())
    assert fedavg["scenario"] == "missing" and fedavg["beta"] == 0.5

    again = hpc_fed("benchmark", str(matrix), "--local")
    assert again.returncode == 0 and again.stdout.count("skip") >= 3, again.stdout

    out = tmp_path / "report"
    rep = hpc_fed("report", str(tmp_path / "bench"), "--out", str(out))
    assert rep.returncode == 0, rep.stderr[-3000:]
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert {r["method"] for r in rows} == {"Zero-shot", "FedAvg", "FedAvg+prompt"}
    table = (out / "results.md").read_text()
    assert "missing β=0.5" in table and "FedAvg+prompt" in table
    assert any(p.suffix == ".png" and p.stat().st_size > 5000 for p in out.iterdir())
