"""results.csv (one row per run) and results.md (the paper's tables, one per dataset). An
existing file of either name is replaced only when it is one hpc-fed report wrote (WRITTEN:
its first bytes), never a user's file of the same name."""

from __future__ import annotations

import csv
import json
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from hpc_fed.data.scenarios import VIEWS as _SCENARIO_VIEWS
from hpc_fed.runtime.owned import starts_with
from hpc_fed.report.collect import (
    ALL,
    METRIC_ORDER,
    MUST_AGREE,
    TAG_KEYS,
    Collection,
    Run,
    column_key,
    is_baseline,
    is_fraction,
    lower_is_better,
    method_key,
    primary_metric,
    run_sort_key,
    setting_label,
)

VIEWS = tuple(_SCENARIO_VIEWS)
MARKDOWN_TITLE = "# Federated MLLM benchmark report"
WRITTEN = {"results.csv": starts_with(",".join(TAG_KEYS).encode() + b","),  # file -> recogniser
           "results.md": starts_with(MARKDOWN_TITLE.encode() + b"\n")}


# --- aggregation -------------------------------------------------------------------------------
def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n-1; 0 for a single seed)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


@dataclass
class DatasetTable:
    """One dataset's final metric per (method, column); a column is (scenario, setting)."""

    dataset: str
    metric: str
    view: str | None
    columns: list[tuple[str, str]]
    methods: list[str]
    cells: dict[tuple[str, tuple[str, str]], list[float]]
    broadcast: dict[str, int]  # methods of `all` runs (one value for every column) -> their seeds

    def values(self, method: str, column: tuple[str, str]) -> list[float]:
        return self.cells.get((method, column), [])

    def avg(self, method: str) -> tuple[float | None, bool]:
        """Mean over columns of the cell means, and whether every column had a value."""
        means = [statistics.fmean(v) for c in self.columns if (v := self.values(method, c))]
        return (statistics.fmean(means) if means else None), len(means) == len(self.columns)

    def best(self, column: tuple[str, str] | None) -> set[str]:
        """The FL methods (baselines excluded) with the best displayed mean in a column (None: avg)."""
        shown = {}
        for m in self.methods:
            if is_baseline(m):
                continue
            mean = self.avg(m)[0] if column is None else (
                statistics.fmean(v) if (v := self.values(m, column)) else None)
            if mean is not None:
                shown[m] = round(scale(self.metric, mean), decimals(self.metric))
        if not shown:
            return set()
        target = (min if lower_is_better(self.metric) else max)(shown.values())
        return {m for m, v in shown.items() if v == target}

    def within_noise(self, column: tuple[str, str]) -> set[str]:
        """The FL methods not best in `column` whose gap to a best one is within the seeds'
        spread: |mean difference| <= the larger of the two sample stds (both need 2+ seeds).
        Such a gap does not separate the methods."""
        out = set()
        for b in self.best(column):
            best = self.values(b, column)
            if len(best) < 2:
                continue
            for m in self.methods:
                v = self.values(m, column)
                if is_baseline(m) or m in self.best(column) or len(v) < 2:
                    continue
                gap = abs(statistics.fmean(v) - statistics.fmean(best))
                if gap <= max(statistics.stdev(v), statistics.stdev(best)):
                    out.add(m)
        return out

    def seed_counts(self) -> list[int]:
        """Seeds per cell, leaving out the setting-independent rows (zero-shot)."""
        return [len(v) for m in self.methods if m not in self.broadcast for c in self.columns
                if (v := self.values(m, c))]


def build_table(runs: list[Run], metric: str, view: str | None = None) -> DatasetTable:
    """Group one dataset's runs; a run with setting `all` fills every column."""
    columns = sorted({r.column for r in runs if r.setting != ALL}, key=column_key) or [(ALL, ALL)]
    cells: dict[tuple[str, tuple[str, str]], list[float]] = {}
    broadcast: dict[str, int] = {}
    for r in runs:
        v = r.value(metric, view)
        if v is None:
            continue
        if r.setting == ALL:
            broadcast[r.method] = broadcast.get(r.method, 0) + 1
        for c in columns if r.setting == ALL else [r.column]:
            cells.setdefault((r.method, c), []).append(v)
    methods = sorted({m for m, _ in cells}, key=method_key)
    return DatasetTable(runs[0].dataset if runs else "", metric, view, columns, methods, cells, broadcast)


def by_dataset(runs: list[Run]) -> dict[str, list[Run]]:
    out: dict[str, list[Run]] = {}
    for r in sorted(runs, key=run_sort_key):
        out.setdefault(r.dataset, []).append(r)
    return out


# --- formatting --------------------------------------------------------------------------------
def scale(metric: str, v: float) -> float:
    return 100 * v if is_fraction(metric) else v


def decimals(metric: str) -> int:
    return 1 if is_fraction(metric) else 3


def fmt_value(metric: str, v: float) -> str:
    return f"{scale(metric, v):.{decimals(metric)}f}"


def fmt_cell(metric: str, values: list[float]) -> str:
    if not values:
        return "–"
    mean, std = mean_std(values)
    return fmt_value(metric, mean) + (f" ± {fmt_value(metric, std)}" if len(values) > 1 else "")


def column_label(column: tuple[str, str]) -> str:
    scenario, setting = column
    return "all" if setting == ALL else f"{scenario} {setting_label(setting)}"


def metric_phrase(metric: str) -> str:
    unit = "%, " if is_fraction(metric) else ""
    better = "lower" if lower_is_better(metric) else "higher"
    return f"`{metric}` ({unit}{better} is better)"


def seeds_phrase(counts: list[int]) -> str:
    if not counts:
        return "no values"
    lo, hi = min(counts), max(counts)
    if lo == hi:
        return f"{lo} seed{'s' if lo > 1 else ''} per cell"
    return f"{lo}–{hi} seeds per cell (cells with fewer than {hi} are marked n=…)"


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def markdown_table(t: DatasetTable) -> list[str]:
    counts = t.seed_counts()
    most = max(counts, default=0)
    head = ["method", *(column_label(c) for c in t.columns), "avg"]
    lines = [_md_row(head), "|" + "---|" + "---:|" * (len(head) - 1)]
    best = {c: t.best(c) for c in t.columns}
    near = {c: t.within_noise(c) for c in t.columns}
    best_avg = t.best(None)
    partial_avg = False
    for m in t.methods:
        row = [m]
        for c in t.columns:
            v = t.values(m, c)
            cell = fmt_cell(t.metric, v)
            if v and len(v) < most and m not in t.broadcast:
                cell += f" (n={len(v)})"
            row.append(f"**{cell}**" if m in best[c] else cell + (" ≈" if m in near[c] else ""))
        mean, complete = t.avg(m)
        cell = "–" if mean is None else fmt_value(t.metric, mean) + ("" if complete else "†")
        partial_avg |= mean is not None and not complete
        row.append(f"**{cell}**" if m in best_avg else cell)
        lines.append(_md_row(row))
    lines.append("")
    spread = "mean ± sample std over seeds" if max(counts, default=1) > 1 else "one seed each, no spread"
    note = (f"Metric: {metric_phrase(t.metric)}, final model; cells are {spread}, "
            f"{seeds_phrase(counts)}. **Bold**: best FL method per column (baselines excluded). "
            "avg: mean of the row's columns.")
    if any(near.values()):
        note += (" ≈: within noise of the column's best: the gap is no larger than the larger of "
                 "the two methods' std over seeds, so these seeds do not separate them.")
    for m, n in t.broadcast.items():
        note += (f" {m} does not depend on the setting: its value ({n} run{'s' if n > 1 else ''}) "
                 "fills every column.")
    if partial_avg:
        note += " †: average over the row's available columns only."
    lines.append(note)
    return lines


def views_table(runs: list[Run], metric: str) -> list[str]:
    """Robustness: the final metric on the full test set and without images / without text."""
    with_views = [r for r in runs if r.views]
    if not with_views:
        return []
    views = [v for v in VIEWS if v == "full" or any(v in r.views for r in with_views)]
    views += sorted({v for r in with_views for v in r.views} - set(views))
    groups: dict[tuple, list[Run]] = {}
    for r in with_views:
        groups.setdefault((column_key(r.column), r.column, method_key(r.method), r.method), []).append(r)
    lines = [_md_row(["setting", "method", *views, "seeds"]), "|---|---|" + "---:|" * (len(views) + 1)]
    for (_, column, _, method), rs in sorted(groups.items(), key=lambda kv: kv[0][::2]):
        cells = [fmt_cell(metric, [x for r in rs if (x := r.value(metric, v)) is not None]) for v in views]
        lines.append(_md_row([column_label(column), method, *cells, str(len(rs))]))
    spread = ("mean ± sample std over seeds" if any(len(rs) > 1 for rs in groups.values())
              else "one seed each, no spread")
    lines += ["", f"Metric: {metric_phrase(metric)}, final model, on the full test set (full), with the "
              f"images removed (no_image) and with the text removed (no_text); {spread}."]
    return lines


def condition_mix(runs: list[Run]) -> dict[str, Counter]:
    """Per condition (base weights, libraries, torch threads, device): how many runs had each
    value, over the runs that recorded provenance."""
    mix: dict[str, Counter] = {}
    for r in runs:
        for k, v in r.conditions.items():
            mix.setdefault(k, Counter())[v] += 1
    return mix


def conditions_lines(runs: list[Run]) -> list[str]:
    """The report's "Conditions" section: what the numbers were made with, and a warning when
    runs compared in one table were made on different base models or library versions."""
    mix = condition_mix(runs)
    unrecorded = sum(1 for r in runs if not r.conditions)
    lines = []
    for key, counts in mix.items():
        values = "; ".join(f"{v} ({n} runs)" for v, n in counts.most_common())
        if len(counts) > 1 and key in MUST_AGREE:
            lines.append(f"- **{key} differ between runs: {values}. Runs made on different {key} "
                         "are not comparable; rerun the minority.**")
        else:
            lines.append(f"- {key}: {values}")
    if unrecorded:
        lines.append(f"- {unrecorded} run(s) record no provenance (made before it was recorded): "
                     "their base model and libraries are unknown")
    return lines


def condition_warnings(runs: list[Run]) -> list[str]:
    """One line per condition that must agree and does not (printed by `hpc-fed report`)."""
    return [f"runs were made on {len(counts)} different {key} ("
            + ", ".join(f"{v}: {n}" for v, n in counts.most_common()) + "); they are not comparable"
            for key, counts in condition_mix(runs).items() if key in MUST_AGREE and len(counts) > 1]


def markdown_report(col: Collection, metric: str | None = None) -> str:
    lines = [MARKDOWN_TITLE, "",
             f"{len(col.runs)} run(s), {len(col.incomplete)} incomplete, "
             f"{len(col.superseded)} superseded by a newer run with the same tags.", ""]
    for dataset, runs in by_dataset(col.runs).items():
        m = metric or primary_metric(runs)
        lines += [f"## {dataset}", ""]
        t = build_table(runs, m)
        if not t.methods:
            lines += [f"No run of {dataset} has the metric `{m}`.", ""]
            continue
        lines += markdown_table(t) + [""]
        views = views_table(runs, m)
        if views:
            lines += [f"### {dataset}: robustness to missing modalities at test time", "", *views, ""]
    conditions = conditions_lines(col.runs)
    if conditions:
        lines += ["## Conditions", "", "What decides the numbers besides each run's config "
                  "(results.json `provenance`):", "", *conditions, ""]
    if col.incomplete:
        lines += ["## Incomplete run directories", "", "| run dir | reason |", "|---|---|"]
        lines += [_md_row([str(i.path), i.reason]) for i in col.incomplete] + [""]
    if col.superseded:
        lines += ["## Superseded runs (an identically tagged newer run is used)", ""]
        lines += [f"- {r.path}" for r in col.superseded] + [""]
    return "\n".join(lines)


# --- CSV ---------------------------------------------------------------------------------------
def _flatten(d: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        elif isinstance(v, (list, tuple)):
            out[key] = json.dumps(v)
        else:
            out[key] = v
    return out


def _metric_col_key(name: str) -> tuple:
    parts = name.split(".")
    leaf = parts[-1]
    order = METRIC_ORDER.index(leaf) if leaf in METRIC_ORDER else len(METRIC_ORDER)
    return (len(parts), parts[:-1], order, leaf)


def csv_rows(col: Collection) -> tuple[list[str], list[dict]]:
    rows = []
    runs = [(r, False) for r in col.runs] + [(r, True) for r in col.superseded]
    for r, superseded in sorted(runs, key=lambda p: run_sort_key(p[0])):
        final = dict(r.final)
        views = final.pop("views", None)
        metrics = _flatten(final)
        if isinstance(views, dict):
            metrics.update(_flatten(views))
        row = {**{k: r.tags[k] for k in TAG_KEYS}, "primary_metric": r.primary_metric,
               "baseline": r.results.get("baseline", ""), "algorithm": r.results.get("algorithm", ""),
               **metrics}
        for m in dict.fromkeys(["accuracy", r.primary_metric]):
            row[f"initial.{m}"] = r.initial_value(m)
        row["base_weights"] = r.conditions.get("base weights")
        row.update({"rounds": r.results.get("rounds"), "wall_seconds": r.results.get("wall_seconds"),
                    "world_size": r.results.get("world_size"),
                    "client_groups": r.results.get("client_groups"),
                    "superseded": superseded, "run_dir": col.relative(r.path)})
        rows.append(row)
    fixed = [*TAG_KEYS, "primary_metric", "baseline", "algorithm"]
    tail = ["base_weights", "rounds", "wall_seconds", "world_size", "client_groups", "superseded",
            "run_dir"]
    seen = dict.fromkeys(k for row in rows for k in row)
    initial = sorted((k for k in seen if k.startswith("initial.")), key=_metric_col_key)
    metric_cols = sorted((k for k in seen if k not in fixed + tail and k not in initial), key=_metric_col_key)
    return fixed + metric_cols + initial + tail, rows


def write_csv(col: Collection, path: Path) -> None:
    columns, rows = csv_rows(col)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, restval="")
        w.writeheader()
        for row in rows:
            w.writerow({k: "" if v is None else v for k, v in row.items()})
