"""PNG plots (matplotlib, Agg; no pyplot global state): learning curves and per-scenario bars.

  curves_<dataset>_<setting>.png  the metric after each round per method (mean over seeds,
                                  band = ± sample std), round 0 = before training; baselines
                                  as dashed horizontal lines at their final value
  scenarios_<dataset>.png         one subplot per scenario: x = settings, bars = FL methods and
                                  per-setting baselines (hatched), error bars = ± sample std;
                                  setting-independent baselines (zero-shot) as dashed lines

An existing PNG of the same name is replaced only when matplotlib wrote it (its Software chunk),
never another file.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from matplotlib.ticker import MaxNLocator, PercentFormatter

from hpc_fed.errors import ConfigError
from hpc_fed.runtime.owned import replace_problem, starts_with

from hpc_fed.report.collect import (
    ALL,
    Run,
    column_key,
    is_baseline,
    is_fraction,
    lower_is_better,
    method_key,
    primary_metric,
    safe_name,
    scenario_key,
    setting_key,
    setting_label,
)
from hpc_fed.report.tables import build_table, by_dataset, mean_std

SCENARIO_AXIS = {"aligned": "Dirichlet α (label skew; smaller = more skewed)",
                 "missing": "β (probability a sample lost a modality)",
                 "cross": "k (image-only clients; the others are text-only)",
                 "hybrid": "p (probability a client keeps each modality)"}
SCENARIO_TITLE = {"aligned": "aligned (both modalities)", "missing": "missing modalities",
                  "cross": "cross-modal", "hybrid": "hybrid"}


PNG_WRITTEN = starts_with(b"Matplotlib", within=256)  # the Software text chunk of savefig's PNGs


def _save(fig, path: Path) -> None:
    """fig.savefig(path) unless path is a file hpc-fed report did not write (ConfigError)."""
    problem = replace_problem(path, PNG_WRITTEN, what="the plot")
    if problem:
        raise ConfigError(problem)
    fig.savefig(path)


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _percent_axis(ax, metric: str) -> None:
    """Percent ticks with as many decimals as the visible range needs (a 5-point range shows
    57.5 %, not a rounded 57 % or 58 %); call after the limits are set."""
    if is_fraction(metric):
        lo, hi = ax.get_ylim()
        span = hi - lo
        decimals = 0 if span >= 0.2 else 1 if span >= 0.02 else 2
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=decimals))
    ax.set_ylabel(_metric_label(metric))
    ax.grid(True, axis="y", alpha=0.3)


def _mark_cut(ax) -> bool:
    """Bars whose axis does not start at zero: a break mark at the bottom of the y axis.
    Returns whether the axis is cut."""
    lo, _ = ax.get_ylim()
    if lo <= 0:
        return False
    kw = dict(transform=ax.transAxes, color="black", clip_on=False, lw=1)
    for dy in (0.0, 0.02):
        ax.plot([-0.015, 0.015], [0.01 + dy, 0.03 + dy], **kw)
    return True


def _metric_label(metric: str) -> str:
    unit = " (%)" if is_fraction(metric) else ""
    return f"{metric}{unit}, {'lower' if lower_is_better(metric) else 'higher'} is better"


def _colors(methods: list[str]) -> dict[str, object]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"] if len(methods) <= 10 else colormaps["tab20"]
    return {m: cmap(i % cmap.N) for i, m in enumerate(methods)}


def _mean_curve(runs: list[Run], metric: str) -> tuple[list[int], list[float], list[float]]:
    """Per x (rounds completed): mean and std over the seeds that have a value there."""
    at: dict[int, list[float]] = {}
    for r in runs:
        points = {x: ev.get(metric) for x, ev in r.curve}
        if points and (v0 := r.initial_value(metric)) is not None:
            points.setdefault(0, v0)
        for x, v in points.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                at.setdefault(x, []).append(float(v))
    xs = sorted(at)
    stats = [mean_std(at[x]) for x in xs]
    return xs, [m for m, _ in stats], [s for _, s in stats]


def _ylim(ax, values: list[float], metric: str) -> None:
    """Zoom on the data, keeping a margin (fractions stay inside [0, 1])."""
    if not values:
        return
    lo, hi = min(values), max(values)
    pad = max((hi - lo) * 0.15, 0.02 if is_fraction(metric) else abs(hi) * 0.05 or 0.1)
    lo, hi = lo - pad, hi + pad
    if is_fraction(metric):
        lo, hi = max(0.0, lo), min(1.0, hi)
    ax.set_ylim(lo, hi)


def plot_curves(runs: list[Run], metric: str, out: Path, names_with_scenario: bool = False) -> list[Path]:
    """One PNG per setting of one dataset; nothing for a setting without any evaluated round."""
    written = []
    dataset = runs[0].dataset
    methods = sorted({r.method for r in runs}, key=method_key)
    colors = _colors(methods)
    zero = [r for r in runs if r.setting == ALL]
    for column in sorted({r.column for r in runs if r.setting != ALL}, key=column_key):
        here = [r for r in runs if r.column == column]
        curves = {m: _mean_curve([r for r in here if r.method == m], metric) for m in methods}
        if not any(xs for xs, _, _ in curves.values()):
            continue
        fig = _figure(8, 4.8)
        ax = fig.add_subplot()
        shown: list[float] = []
        max_x = max(max(xs) for xs, _, _ in curves.values() if xs)
        for m in methods:
            xs, means, stds = curves[m]
            if xs:
                ax.plot(xs, means, marker="o", ms=3, lw=1.8, color=colors[m], label=m)
                if any(stds):
                    ax.fill_between(xs, [a - b for a, b in zip(means, stds)],
                                    [a + b for a, b in zip(means, stds)], color=colors[m], alpha=0.15)
                shown += means
                continue
            pool = [r for r in here if r.method == m] or [r for r in zero if r.method == m]
            finals = [v for r in pool if (v := r.value(metric)) is not None]
            if finals:  # a baseline without per-round evaluation: its final value
                v = statistics.fmean(finals)
                ax.axhline(v, color=colors[m], ls="--", lw=1.5, label=f"{m} (final)")
                shown.append(v)
        _ylim(ax, shown, metric)
        _percent_axis(ax, metric)
        ax.set_xlim(0, max_x)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("communication round (0 = before training)")
        n = max((len({r.seed for r in here if r.method == m}) for m in methods), default=1)
        seeds = f"mean ± std over {n} seeds" if n > 1 else "1 seed"
        ax.set_title(f"{dataset}, {column[0]} {setting_label(column[1])}: test {metric} per round ({seeds})")
        ax.legend(loc="best", fontsize="small", title="method")
        stem = (safe_name("curves", dataset, column[0], column[1]) if names_with_scenario
                else safe_name("curves", dataset, column[1]))
        path = out / f"{stem}.png"
        _save(fig, path)
        written.append(path)
    return written


def plot_scenarios(runs: list[Run], metric: str, out: Path) -> Path | None:
    """The final metric per scenario and setting, bars per method; None without any scenario."""
    table = build_table(runs, metric)
    scenarios = sorted({s for s, st in table.columns if st != ALL}, key=scenario_key)
    if not scenarios:
        return None
    dataset = runs[0].dataset
    colors = _colors(table.methods)
    constant = {r.method for r in runs if r.setting == ALL}  # same value in every column
    bar_methods = [m for m in table.methods if m not in constant]
    fig = _figure(max(7.0, 4.2 * len(scenarios)), 5.0)
    axes = fig.subplots(1, len(scenarios), sharey=True, squeeze=False)[0]
    shown: list[float] = []
    handles: dict[str, object] = {}
    width = 0.8 / max(3, len(bar_methods))
    for ax, scenario in zip(axes, scenarios):
        cols = sorted((c for c in table.columns if c[0] == scenario), key=lambda c: setting_key(c[1]))
        for i, m in enumerate(bar_methods):
            xs, means, errs = [], [], []
            for j, c in enumerate(cols):
                if values := table.values(m, c):
                    mean, std = mean_std(values)
                    xs.append(j + (i - (len(bar_methods) - 1) / 2) * width)
                    means.append(mean)
                    errs.append(std)
            if not xs:
                continue
            h = ax.bar(xs, means, width=width * 0.95, yerr=errs if any(errs) else None, capsize=2,
                       color=colors[m], edgecolor="black", lw=0.5, label=m,
                       hatch="//" if is_baseline(m) else None, alpha=0.6 if is_baseline(m) else 1.0)
            handles.setdefault(m, h)
            shown += [a + b for a, b in zip(means, errs)] + [a - b for a, b in zip(means, errs)]
        for m in table.methods:
            if m in constant and (values := table.values(m, cols[0])):
                v = statistics.fmean(values)
                handles.setdefault(m, ax.axhline(v, color=colors[m], ls="--", lw=1.5,
                                                 label=f"{m} (any setting)"))
                shown.append(v)
        ax.set_xticks(range(len(cols)), [setting_label(c[1]) for c in cols])
        ax.set_xlim(-0.6, len(cols) - 0.4)
        ax.set_xlabel(SCENARIO_AXIS.get(scenario, "setting"), fontsize="small")
        ax.set_title(SCENARIO_TITLE.get(scenario, scenario))
    _ylim(axes[0], shown, metric)  # the axes share y: this sets every panel's limits
    cut = False
    for ax in axes:
        _percent_axis(ax, metric)
        cut = _mark_cut(ax) or cut
        if ax is not axes[0]:
            ax.set_ylabel("")
    seeds = max((len({r.seed for r in runs if r.method == m}) for m in table.methods), default=1)
    spread_note = f"mean ± std over {seeds} seeds" if seeds > 1 else "1 seed, no error bars"
    cut_note = f"; y axis cut at {axes[0].get_ylim()[0]:.1%}" if cut and is_fraction(metric) else \
        ("; y axis cut" if cut else "")
    fig.suptitle(f"{dataset}: final test {metric} per scenario and setting\n"
                 f"({spread_note}; heterogeneity grows to the right{cut_note})")
    ordered = [m for m in table.methods if m in handles]
    fig.legend([handles[m] for m in ordered], [handles[m].get_label() for m in ordered],
               loc="outside lower center", ncols=min(len(ordered), 8), fontsize="small")
    path = out / f"{safe_name('scenarios', dataset)}.png"
    _save(fig, path)
    return path


def write_plots(runs: list[Run], out: Path, metric: str | None = None) -> list[Path]:
    written: list[Path] = []
    for _, rs in by_dataset(runs).items():
        m = metric or primary_metric(rs)
        settings = [(r.scenario, r.setting) for r in rs if r.setting != ALL]
        clash = len({s for _, s in set(settings)}) < len(set(settings))  # a setting in two scenarios
        written += plot_curves(rs, m, out, names_with_scenario=clash)
        if (p := plot_scenarios(rs, m, out)) is not None:
            written.append(p)
    return written
