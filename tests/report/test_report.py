"""`hpc-fed report` on fake run directories (no model): CSV, markdown tables, plots, errors."""

from __future__ import annotations

import csv
import json
import random
import statistics
from pathlib import Path

import pytest
import yaml

from hpc_fed.report.cli import main
from hpc_fed.report.collect import collect, column_key, derive_tags, method_key, safe_name

# auc of the final model per (scenario, setting) -> method -> seeds 0, 1
AUC = {("aligned", "alpha0.5"): {"FedAvg": [0.70, 0.74], "FedAvg+prompt+adaptive": [0.76, 0.80]},
       ("missing", "beta0.3"): {"FedAvg": [0.60, 0.62], "FedAvg+prompt+adaptive": [0.57, 0.59]}}
ZERO_SHOT_AUC = 0.65  # above some FL cells: baselines must never be bolded
ROUNDS = 3


def _config(scenario: str, setting: str, method: str, seed: int, baseline: str = "none") -> dict:
    data = {"name": "claims", "scenario": scenario, "partition": "dirichlet", "alpha": 0.5, "beta": 0.3,
            "k": 3, "p": 0.8, "prompt": "modality_agnostic" if "+prompt" in method else "modality"}
    if setting.startswith("alpha"):
        data["alpha"] = float(setting[5:])
    elif setting.startswith("beta"):
        data["beta"] = float(setting[4:])
    return {"data": data, "baseline": baseline,
            "fed": {"algorithm": "fedavg", "regularizer": "adaptive" if "+adaptive" in method else "none",
                    "seed": seed}}


def _write_run(path: Path, cfg: dict, final: dict, initial: dict | None, tags: dict | None,
               curve: list[dict | None]) -> None:
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump(cfg))
    rows = [{"round": t, "lr": 1e-3, "train_loss": 1.0 / (t + 1), "eval": ev, "time": {"round": 1.0}}
            for t, ev in enumerate(curve)]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    results = {"initial": initial, "final": final, "rounds": len(curve), "algorithm": "fedavg",
               "baseline": cfg["baseline"], "world_size": 2, "client_groups": 2, "wall_seconds": 12.5,
               "primary_metric": "auc"}
    if tags is not None:
        results["tags"] = tags
    (path / "results.json").write_text(json.dumps(results))


@pytest.fixture
def sweep(tmp_path) -> Path:
    """2 settings x 2 methods x 2 seeds, a zero-shot `all` run and an incomplete run dir."""
    root = tmp_path / "sweep"
    for (scenario, setting), methods in AUC.items():
        for method, aucs in methods.items():
            for seed, auc in enumerate(aucs):
                initial = {"accuracy": 0.5, "auc": 0.55, "nll": 0.7, "samples": 100}
                final = {"accuracy": auc - 0.05, "auc": auc, "nll": 0.6, "samples": 100,
                         "macro_f1": auc - 0.1}
                tags = None
                if method == "FedAvg":  # FedAvg runs carry tags; the others get them from config.yaml
                    tags = {"dataset": "claims", "scenario": scenario, "setting": setting, "method": method,
                            "seed": str(seed)}
                    final["views"] = {"no_image": {"accuracy": 0.5, "auc": auc - 0.2},
                                      "no_text": {"accuracy": 0.45, "auc": auc - 0.1}}
                curve = [{"auc": 0.55 + (auc - 0.55) * (t + 1) / ROUNDS, "accuracy": 0.5}
                         for t in range(ROUNDS)]
                _write_run(root / f"{setting}-{safe_name(method)}-s{seed}",
                           _config(scenario, setting, method, seed), final, initial, tags, curve)
    zs = {"accuracy": 0.55, "auc": ZERO_SHOT_AUC, "nll": 0.7, "samples": 100}
    _write_run(root / "zero-shot", _config("aligned", "alpha0.5", "", 0, "zero_shot"), zs, zs,
               {"dataset": "claims", "scenario": "all", "setting": "all", "method": "Zero-shot", "seed": "0"},
               [None] * ROUNDS)
    broken = root / "killed-run"
    broken.mkdir()
    (broken / "config.yaml").write_text(yaml.safe_dump(_config("aligned", "alpha0.5", "FedAvg", 9)))
    (broken / "metrics.jsonl").write_text("")
    return root


def _table(md: str, title: str) -> list[list[str]]:
    """The first markdown table after the heading `title`, as rows of cells (header first)."""
    lines = md.splitlines()
    start = lines.index(title)
    rows = []
    for line in lines[start + 1:]:
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip("|").split(" | ")])
        elif rows:
            break
    return [rows[0]] + rows[2:]  # drop the |---| line


def _cell(values: list[float]) -> str:
    return f"{100 * statistics.fmean(values):.1f} ± {100 * statistics.stdev(values):.1f}"


def test_report_end_to_end(sweep, tmp_path, capsys):
    out = tmp_path / "report"
    assert main([str(sweep), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "runs found: 9" in printed and "incomplete: 1" in printed and "killed-run" in printed

    # CSV: one row per run, tags (given or derived), flattened metrics and views
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert len(rows) == 9
    cols = list(rows[0])
    assert cols[:6] == ["dataset", "scenario", "setting", "method", "seed", "primary_metric"]
    for c in ("auc", "accuracy", "macro_f1", "nll", "no_image.auc", "no_text.accuracy", "initial.accuracy",
              "initial.auc", "rounds", "wall_seconds", "run_dir"):
        assert c in cols, c
    assert cols.index("accuracy") < cols.index("no_image.accuracy")
    derived = [r for r in rows if r["method"] == "FedAvg+prompt+adaptive"]
    assert len(derived) == 4 and {r["dataset"] for r in derived} == {"claims"}
    assert {(r["scenario"], r["setting"], r["seed"]) for r in derived} == {
        (s, st, str(seed)) for s, st in AUC for seed in (0, 1)}
    one = next(r for r in rows if r["run_dir"].endswith("beta0.3-FedAvg-s1"))
    # named relative to the folder given (no absolute path of this machine in a committed report)
    assert all(not r["run_dir"].startswith("/") and (sweep / r["run_dir"]).is_dir() for r in rows)
    assert float(one["auc"]) == pytest.approx(0.62) and float(one["no_image.auc"]) == pytest.approx(0.42)
    assert one["primary_metric"] == "auc" and one["rounds"] == "3" and float(one["initial.accuracy"]) == 0.5
    assert next(r for r in rows if r["method"] == "Zero-shot")["setting"] == "all"

    # Markdown: the paper's layout, mean ± sample std by hand, bold = best FL method per column
    md = (out / "results.md").read_text()
    table = _table(md, "## claims")
    assert table[0] == ["method", "aligned α=0.5", "missing β=0.3", "avg"]
    assert [r[0] for r in table[1:]] == ["Zero-shot", "FedAvg", "FedAvg+prompt+adaptive"]
    body = {r[0]: r[1:] for r in table[1:]}
    a, m = AUC[("aligned", "alpha0.5")], AUC[("missing", "beta0.3")]
    assert body["Zero-shot"] == ["65.0", "65.0", "65.0"]  # broadcast to every column, never bold
    assert body["FedAvg"] == [_cell(a["FedAvg"]), f"**{_cell(m['FedAvg'])}**", "66.5"]
    assert body["FedAvg+prompt+adaptive"] == [f"**{_cell(a['FedAvg+prompt+adaptive'])}**",
                                              _cell(m["FedAvg+prompt+adaptive"]), "**68.0**"]
    assert body["FedAvg"][0] == "72.0 ± 2.8"
    assert "Metric: `auc` (%, higher is better)" in md and "2 seeds per cell" in md
    views = _table(md, "### claims: robustness to missing modalities at test time")
    assert views[0] == ["setting", "method", "full", "no_image", "no_text", "seeds"]
    assert views[1] == ["aligned α=0.5", "FedAvg", "72.0 ± 2.8", "52.0 ± 2.8", "62.0 ± 2.8", "2"]
    assert "## Incomplete run directories" in md and "killed-run" in md

    # PNGs
    for name in ("curves_claims_alpha0.5.png", "curves_claims_beta0.3.png", "scenarios_claims.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, name
    from PIL import Image

    with Image.open(out / "scenarios_claims.png") as im:
        assert im.size[0] > 400 and im.size[1] > 300


def test_metric_override_and_no_plots(sweep, tmp_path):
    out = tmp_path / "r"
    assert main([str(sweep / "alpha0.5-FedAvg-s0"), str(sweep / "alpha0.5-FedAvg-s1"), "--out", str(out),
                 "--metric", "accuracy", "--no-plots"]) == 0
    md = (out / "results.md").read_text()
    table = _table(md, "## claims")
    assert table[1] == ["FedAvg", "**67.0 ± 2.8**", "**67.0**"]
    assert "Metric: `accuracy`" in md and not list(out.glob("*.png"))


def test_one_seed_cells_have_no_std_and_nll_is_lower_better(sweep, tmp_path):
    out = tmp_path / "r"
    assert main([str(sweep / "alpha0.5-FedAvg-s0"), "--out", str(out), "--metric", "nll", "--no-plots"]) == 0
    md = (out / "results.md").read_text()
    assert _table(md, "## claims")[1] == ["FedAvg", "**0.600**", "**0.600**"]
    assert "lower is better" in md and "1 seed per cell" in md


def test_no_run_dir_is_a_clear_error(tmp_path, capsys):
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    assert main([str(empty), "--out", str(tmp_path / "r")]) == 2
    assert str(empty) in capsys.readouterr().err
    missing = tmp_path / "does-not-exist"
    assert main([str(missing), "--out", str(tmp_path / "r")]) == 2
    assert str(missing) in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # argparse: no RUN_DIR at all
        main(["--out", str(tmp_path / "r")])
    assert exc.value.code == 2


def test_only_incomplete_runs_is_an_error(sweep, tmp_path, capsys):
    assert main([str(sweep / "killed-run"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "no complete run" in err and "killed-run" in err


def test_rerun_with_same_tags_supersedes_older(sweep):
    src = sweep / "alpha0.5-FedAvg-s0"
    copy = sweep / "zz-rerun"
    copy.mkdir()
    for f in ("config.yaml", "metrics.jsonl"):
        (copy / f).write_text((src / f).read_text())
    res = json.loads((src / "results.json").read_text())
    res["final"]["auc"] = 0.9
    (copy / "results.json").write_text(json.dumps(res))
    col = collect([sweep])
    assert len(col.runs) == 9 and [r.path.name for r in col.superseded] == ["alpha0.5-FedAvg-s0"]


def test_derive_tags_from_config():
    def tags(**cfg):
        return derive_tags(cfg, {})

    assert tags(data={"name": "hateful_memes", "alpha": 1}, fed={"algorithm": "fedprox", "seed": 2}) == {
        "dataset": "hateful_memes", "scenario": "aligned", "setting": "alpha1.0", "method": "FedProx",
        "seed": "2"}
    assert tags(data={"scenario": "cross", "k": 5}, fed={"algorithm": "scaffold"})["setting"] == "k5"
    assert tags(data={"scenario": "hybrid", "p": 0.7})["setting"] == "p0.7"
    assert tags(data={"scenario": "missing", "beta": 0.4}, baseline="local")["method"] == "Local"
    assert tags(baseline="centralized")["method"] == "Centralized"
    zs = tags(data={"scenario": "missing"}, baseline="zero_shot")
    assert zs["method"] == "Zero-shot" and zs["setting"] == "all"
    assert tags(fed={"algorithm": "fedyogi", "regularizer": "adaptive"}, data={"prompt": "modality_agnostic"}
                )["method"] == "FedYogi+prompt+adaptive"
    assert tags(data={"partition": "iid"})["setting"] == "iid"


def test_paper_column_and_method_order():
    paper = [("aligned", "alpha5.0"), ("aligned", "alpha1.0"), ("aligned", "alpha0.5"),
             ("missing", "beta0.3"), ("missing", "beta0.4"), ("missing", "beta0.5"),
             ("cross", "k3"), ("cross", "k5"), ("cross", "k7"),
             ("hybrid", "p0.8"), ("hybrid", "p0.7"), ("hybrid", "p0.6")]
    shuffled = paper[:]
    random.Random(0).shuffle(shuffled)
    assert sorted(shuffled, key=column_key) == paper
    methods = ["SCAFFOLD", "FedAvg+prompt", "Centralized", "FedAvg", "Local", "FedProx", "Zero-shot",
               "FedAvg+adaptive"]
    assert sorted(methods, key=method_key) == ["Zero-shot", "Local", "Centralized", "FedAvg", "FedAvg+prompt",
                                               "FedAvg+adaptive", "FedProx", "SCAFFOLD"]


def test_safe_file_names():
    assert safe_name("curves", "my data/set", "alpha0.5") == "curves_my-data-set_alpha0.5"
    assert safe_name("scenarios", "../x") == "scenarios_x"


def test_plots_show_differences_mark_cut_bars_and_claim_no_spread_for_one_seed(sweep):
    """Percent ticks keep the decimals a narrow range needs; zoomed bar charts are marked as
    cut; with one seed no '± std' is claimed."""
    from matplotlib.figure import Figure

    from hpc_fed.report.plots import _percent_axis, plot_scenarios

    ax = Figure().add_subplot()
    ax.set_ylim(0.55, 0.60)
    _percent_axis(ax, "auc")
    labels = [ax.yaxis.get_major_formatter()(v, 0) for v in (0.565, 0.575)]
    assert labels == ["56.5%", "57.5%"]
    col = collect([sweep])
    one_seed = [r for r in col.runs if str(r.seed) in ("0", "s0")]
    assert one_seed and len(one_seed) < len(col.runs)
    texts = {}
    for name, runs in (("two", col.runs), ("one", one_seed)):
        out = sweep.parent / f"plots-{name}"
        out.mkdir()
        saved = []
        original = Figure.savefig

        def keep(self, path, saved=saved, original=original, **kw):
            saved.append(self)
            return original(self, path, **kw)

        Figure.savefig = keep
        try:
            assert plot_scenarios(runs, "auc", out) is not None
        finally:
            Figure.savefig = original
        texts[name] = saved[0].get_suptitle()
    assert "mean ± std over 2 seeds" in texts["two"] and "y axis cut at" in texts["two"]
    assert "±" not in texts["one"] and "1 seed" in texts["one"]


def test_gaps_within_the_seed_spread_are_marked_as_noise():
    from hpc_fed.report.tables import DatasetTable, markdown_table

    col = ("aligned", "alpha0.5")
    cells = {("FedAvg", col): [0.70, 0.74, 0.72], ("FedProx", col): [0.69, 0.73, 0.71],  # gap 1 <= std 2
             ("FedAdam", col): [0.60, 0.61, 0.62], ("Local", col): [0.71, 0.72, 0.73]}
    t = DatasetTable("claims", "auc", None, [col], ["Local", "FedAvg", "FedProx", "FedAdam"], cells, {})
    assert t.best(col) == {"FedAvg"} and t.within_noise(col) == {"FedProx"}
    rows = {line.split("|")[1].strip(): line for line in markdown_table(t) if line.startswith("| ")}
    assert "71.0 ± 2.0 ≈" in rows["FedProx"] and "≈" not in rows["FedAdam"] and "≈" not in rows["Local"]
    assert any("≈: within noise" in line for line in markdown_table(t))


def _provenance(sha: str, torch_version: str = "2.13.0+cpu", threads: int = 1) -> dict:
    return {"base_model": {"location": "runs/models/tiny-llava-all", "weights_sha256": sha},
            "threads": {"torch": threads, "OMP_NUM_THREADS": str(threads)}, "device": "cpu",
            "dtype": "float32", "cpu": "AMD EPYC",
            "versions": {"torch": torch_version, "transformers": "5.24.0", "peft": "0.21.2",
                         "deepspeed": "0.19.8"}}


def test_runs_made_on_different_base_models_are_flagged(sweep, tmp_path, capsys):
    """The report states what the numbers were made with (base weights, libraries, threads) and
    warns when the runs it compares were made on different bases (a matrix resumed
    after the base was rebuilt mixes two bases; nothing else would show it)."""
    runs = sorted(p.parent for p in sweep.rglob("results.json"))
    for i, run in enumerate(runs):
        results = json.loads((run / "results.json").read_text())
        if i:  # the first run records none (made before provenance existed)
            results["provenance"] = _provenance("a" * 64 if i < 4 else "b" * 64)
        (run / "results.json").write_text(json.dumps(results))
    out = tmp_path / "report"
    assert main([str(sweep), "--out", str(out), "--no-plots"]) == 0
    err = capsys.readouterr().err
    assert "2 different base weights (bbbbbbbbbbbb: 5, aaaaaaaaaaaa: 3)" in err
    md = (out / "results.md").read_text()
    conditions = md[md.index("## Conditions"):]
    assert "**base weights differ between runs: bbbbbbbbbbbb" in conditions
    assert "- libraries: torch 2.13.0+cpu, transformers 5.24.0, peft 0.21.2, deepspeed 0.19.8" in conditions
    assert "1 run(s) record no provenance" in conditions
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert sorted({r["base_weights"] for r in rows}) == ["", "aaaaaaaaaaaa", "bbbbbbbbbbbb"]
    # one base: stated, no warning
    for run in runs:
        results = json.loads((run / "results.json").read_text())
        results["provenance"] = _provenance("a" * 64)
        (run / "results.json").write_text(json.dumps(results))
    assert main([str(sweep), "--out", str(out), "--no-plots"]) == 0
    assert "warning" not in capsys.readouterr().err
    md = (out / "results.md").read_text()
    assert f"- base weights: aaaaaaaaaaaa ({len(runs)} runs)" in md and "weights differ" not in md


def test_files_in_out_that_the_report_did_not_write_are_never_replaced(sweep, tmp_path, capsys):
    """--out may be a folder with other files: a results.md / results.csv / plot of a user's
    is refused in one line and left as it was; the report's own files are replaced on a rerun."""
    out = tmp_path / "paper"
    out.mkdir()
    (out / "results.md").write_text("# My draft\n")
    (out / "notes.txt").write_text("mine")
    assert main([str(sweep), "--out", str(out), "--no-plots"]) == 2
    assert "results.md exists and is not a file hpc_fed wrote" in capsys.readouterr().err
    assert (out / "results.md").read_text() == "# My draft\n" and not (out / "results.csv").exists()
    (out / "results.md").unlink()
    assert main([str(sweep), "--out", str(out)]) == 0
    plots = sorted(p.name for p in out.glob("*.png"))
    assert plots and (out / "notes.txt").read_text() == "mine"
    assert main([str(sweep), "--out", str(out)]) == 0  # its own files: replaced
    (out / plots[0]).write_bytes(b"\x89PNG my own figure")
    assert main([str(sweep), "--out", str(out)]) == 2
    assert f"{plots[0]} exists and is not a file hpc_fed wrote" in capsys.readouterr().err
    assert (out / plots[0]).read_bytes() == b"\x89PNG my own figure"
