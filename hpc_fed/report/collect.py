"""Read run directories into `Run` records, and the orderings the paper's tables use.

A run directory is complete when it holds `results.json`; its labels (dataset, scenario,
setting, method, seed) come from `results.json["tags"]`, and any missing one is derived from
`config.yaml` (see `derive_tags`). A directory with `config.yaml` or `metrics.jsonl` but no
readable `results.json` is *incomplete*: counted and listed, never silently dropped.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from hpc_fed.benchmark.matrix import TAG_KEYS
from hpc_fed.data.config import DataConfig
from hpc_fed.errors import HpcFedError
from hpc_fed.data.scenarios import SCENARIO_PARAMS, SCENARIOS
from hpc_fed.fed.methods import REGISTRY
from hpc_fed.runs import BASELINE_TITLES

ALL = "all"  # tags.setting of a run that is valid for every setting (the zero-shot baseline)
BASELINE_ORDER = tuple(BASELINE_TITLES.values())
ALGORITHM_ORDER = tuple(cls.title for cls in REGISTRY.values())
SUFFIX_ORDER = ("", "+prox", "+prompt", "+adaptive", "+prompt+adaptive")
# Metrics in [0, 1] are reported in percent; the rest (nll, samples, ...) as they are.
NOT_FRACTIONS = ("nll", "samples", "loss", "train_loss")
METRIC_ORDER = ("accuracy", "auc", "reference_auc", "macro_f1", "macro_f1_sklearn", "weighted_f1",
                "vqa_accuracy", "open_accuracy", "closed_accuracy", "invalid_rate", "nll", "samples")
RUN_MARKERS = ("config.yaml", "metrics.jsonl")


# libraries whose versions decide the numbers (results.json records more)
CONDITION_PACKAGES = ("torch", "transformers", "peft", "deepspeed")
# conditions whose mix makes results incomparable (a thread count only moves the last bits)
MUST_AGREE = ("base weights", "libraries")


class ReportError(HpcFedError):
    """A user-facing problem with the report's inputs (printed, exit code 2)."""


@dataclass
class Run:
    path: Path
    tags: dict[str, str]
    primary_metric: str
    primary_declared: bool  # results.json named it (old runs do not: accuracy is assumed)
    results: dict[str, Any]
    curve: list[tuple[int, dict]] = field(default_factory=list)  # (rounds completed, eval metrics)

    dataset = property(lambda self: self.tags["dataset"])
    scenario = property(lambda self: self.tags["scenario"])
    setting = property(lambda self: self.tags["setting"])
    method = property(lambda self: self.tags["method"])
    seed = property(lambda self: self.tags["seed"])

    @property
    def final(self) -> dict:
        return self.results.get("final") or {}

    @property
    def initial(self) -> dict | None:
        return self.results.get("initial") or None

    @property
    def views(self) -> dict[str, dict]:
        v = self.final.get("views")
        return v if isinstance(v, dict) else {}

    @property
    def column(self) -> tuple[str, str]:
        return (self.scenario, self.setting)

    def value(self, metric: str, view: str | None = None) -> float | None:
        """A final metric (of one robustness view if given; `full` is the final metrics)."""
        src = self.final if view in (None, "full") else self.views.get(view) or {}
        return _number(src.get(metric))

    def initial_value(self, metric: str) -> float | None:
        return _number((self.initial or {}).get(metric))

    @property
    def conditions(self) -> dict[str, str]:
        """What decides the numbers besides the config (results.json's provenance), short form;
        empty for a run made before provenance was recorded."""
        prov = self.results.get("provenance")
        if not isinstance(prov, dict):
            return {}
        base = (prov.get("base_model") or {}).get("weights_sha256") or "a Hub id (no digest)"
        versions = prov.get("versions") or {}
        libraries = ", ".join(f"{k} {versions[k]}" for k in CONDITION_PACKAGES if versions.get(k))
        threads = (prov.get("threads") or {}).get("torch")
        device = prov.get("gpu") or prov.get("cpu") or prov.get("device") or "?"
        return {"base weights": base[:12] if len(base) == 64 else base,
                "libraries": libraries, "torch threads": str(threads),
                "device": f"{prov.get('device', '?')} {prov.get('dtype', '')} ({device})".strip()}


@dataclass
class Incomplete:
    path: Path
    reason: str


@dataclass
class Collection:
    runs: list[Run]
    incomplete: list[Incomplete]
    superseded: list[Run]  # same tags as a newer run; left out of tables and plots
    # the folder the run directories are named from (the common folder of the paths given):
    # results.csv names each run relative to it, so a committed report carries no machine's paths
    root: Path | None = None

    def relative(self, path: Path) -> str:
        if self.root is None:
            return str(path)
        try:
            return Path(os.path.relpath(Path(path).resolve(), self.root)).as_posix()
        except ValueError:  # another drive (Windows)
            return str(path)


def _number(v) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return None if math.isnan(v) else float(v)


def _get(cfg: dict, dotted: str, default=None):
    cur: Any = cfg
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return default
        cur = cur[part]
    return default if cur is None else cur


def _fmt_float(v) -> str:
    try:
        return str(float(v))
    except (TypeError, ValueError):
        return str(v)


def _fmt_int(v) -> str:
    try:
        return str(int(v))
    except (TypeError, ValueError):
        return str(v)


def method_name(algorithm: str, baseline: str = "none", prompt: str = "modality",
                regularizer: str | None = None) -> str:
    """Display name: the baseline's, else the algorithm's with +prox / +prompt / +adaptive."""
    baseline = (baseline or "none").replace("-", "_")
    if baseline != "none":
        return BASELINE_TITLES.get(baseline, baseline)
    algorithm = algorithm or "fedavg"
    cls = REGISTRY.get(algorithm)
    name = cls.title if cls else algorithm
    regularizer = regularizer or (cls.default_regularizer if cls else "none")
    if regularizer == "prox" and algorithm != "fedprox":
        name += "+prox"
    if prompt == "modality_agnostic":
        name += "+prompt"
    if regularizer == "adaptive":
        name += "+adaptive"
    return name


def derive_tags(cfg: dict, results: dict) -> dict[str, str]:
    """Tags from the resolved config (and results.json's algorithm/baseline when it lacks them)."""
    scenario = _get(cfg, "data.scenario", "aligned")
    baseline = str(_get(cfg, "baseline", results.get("baseline", "none"))).replace("-", "_")
    if baseline == "zero_shot":
        setting = ALL  # the base model on the full test set: the same for every setting
    elif scenario == "aligned" and _get(cfg, "data.partition") == "iid":
        setting = "iid"
    elif scenario in SCENARIO_PARAMS:  # the heterogeneity parameter, as the matrix names it
        param = SCENARIO_PARAMS[scenario]
        default = getattr(DataConfig(), param)
        value = _get(cfg, f"data.{param}", default)
        setting = param + (_fmt_int(value) if isinstance(default, int) else _fmt_float(value))
    else:
        setting = str(scenario)
    method = method_name(str(_get(cfg, "fed.algorithm", results.get("algorithm", "fedavg"))), baseline,
                         str(_get(cfg, "data.prompt", "modality")), _get(cfg, "fed.regularizer"))
    return {"dataset": str(_get(cfg, "data.name", "unknown")), "scenario": str(scenario),
            "setting": setting, "method": method, "seed": _fmt_int(_get(cfg, "fed.seed", 0))}


def _read_curve(path: Path) -> list[tuple[int, dict]]:
    """(rounds completed, eval metrics) of every evaluated round; unreadable lines are skipped."""
    curve = []
    if not path.is_file():
        return curve
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # e.g. a line cut by a killed run
            continue
        if isinstance(row, dict) and isinstance(row.get("eval"), dict) and isinstance(row.get("round"), int):
            curve.append((row["round"] + 1, row["eval"]))
    return sorted(curve, key=lambda p: p[0])


def load_run(path: Path) -> Run:
    """One complete run directory; ValueError with the reason when it cannot be used."""
    try:
        results = json.loads((path / "results.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"results.json unreadable ({exc})") from None
    if not isinstance(results, dict) or not isinstance(results.get("final"), dict):
        raise ValueError("results.json has no final metrics")
    cfg: dict = {}
    if (path / "config.yaml").is_file():
        try:
            cfg = yaml.safe_load((path / "config.yaml").read_text()) or {}
        except yaml.YAMLError as exc:
            raise ValueError(f"config.yaml unreadable ({exc})") from None
    given = results.get("tags") if isinstance(results.get("tags"), dict) else {}
    given = {k: str(v) for k, v in given.items() if v is not None and str(v) != ""}
    tags = {k: given[k] if k in given else v for k, v in derive_tags(cfg, results).items()}
    tags.update({k: v for k, v in given.items() if k not in tags})  # extra free labels kept
    declared = isinstance(results.get("primary_metric"), str) and bool(results["primary_metric"])
    return Run(path=path, tags=tags, primary_metric=results["primary_metric"] if declared else "accuracy",
               primary_declared=declared, results=results, curve=_read_curve(path / "metrics.jsonl"))


def find_run_dirs(paths: Iterable[str | Path]) -> tuple[list[Path], list[Incomplete]]:
    """Run directories (holding results.json) at or below each path, and incomplete ones.

    Raises ReportError naming the path when a path does not exist or holds no run directory.
    """
    found: list[Path] = []
    incomplete: list[Incomplete] = []
    for raw in paths:
        root = Path(raw)
        if not root.exists():
            raise ReportError(f"{root} does not exist; pass run directories or a folder that holds them")
        if root.is_file():
            if root.name != "results.json":
                raise ReportError(f"{root} is a file; pass a run directory (holding results.json) "
                                  "or a folder of them")
            root = root.parent
        here_runs = sorted({p.parent for p in root.rglob("results.json") if p.is_file()})
        markers = sorted({p.parent for m in RUN_MARKERS for p in root.rglob(m) if p.is_file()})
        # A folder above complete runs (a sweep's own config.yaml, say) is not a run itself.
        here_incomplete = [Incomplete(d, "no results.json (still running, failed or killed)")
                           for d in markers if not any(r == d or d in r.parents for r in here_runs)]
        if not here_runs and not here_incomplete:
            raise ReportError(f"no run directory found under {root}: no results.json, config.yaml or "
                              "metrics.jsonl in it or below it")
        found += here_runs
        incomplete += here_incomplete
    found = list(dict.fromkeys(p.resolve() for p in found))
    seen: set[Path] = set()
    unique = []
    for inc in incomplete:
        if inc.path.resolve() not in seen:
            seen.add(inc.path.resolve())
            unique.append(inc)
    return found, unique


def collect(paths: Iterable[str | Path]) -> Collection:
    """Load every run under `paths`; ReportError when none is complete."""
    paths = list(paths)
    dirs, incomplete = find_run_dirs(paths)
    runs = []
    for d in dirs:
        try:
            runs.append(load_run(d))
        except ValueError as exc:
            incomplete.append(Incomplete(d, str(exc)))
    if not runs:
        listed = ", ".join(str(p) for p in paths)
        raise ReportError(f"no complete run (results.json) found under {listed}; "
                          f"{len(incomplete)} incomplete run dir(s): "
                          + ", ".join(str(i.path) for i in incomplete[:5]))
    # Reruns of the same cell and seed: the newest results.json counts.
    by_key: dict[tuple, Run] = {}
    superseded = []
    for run in sorted(runs, key=lambda r: (r.path / "results.json").stat().st_mtime):
        key = tuple(run.tags[k] for k in TAG_KEYS)
        if key in by_key:
            superseded.append(by_key[key])
        by_key[key] = run
    kept = sorted(by_key.values(), key=run_sort_key)
    given = [Path(p).resolve() for p in paths]
    # a run directory given itself is named from its parent (its own name stays in the report)
    root = Path(os.path.commonpath([p if p.is_dir() and not (p / "results.json").is_file() else p.parent
                                    for p in given]))
    return Collection(kept, incomplete, sorted(superseded, key=run_sort_key), root)


# --- orderings (least to most heterogeneous, as in the paper's tables) --------------------------
_SETTING_RE = re.compile(r"^(alpha|beta|k|p)(-?[0-9.]+)$")
_SETTING_DIR = {"alpha": -1, "beta": 1, "k": 1, "p": -1}  # sign: ascending(+1) / descending(-1)
_SETTING_LABEL = {"alpha": "α", "beta": "β", "k": "k", "p": "p"}


def scenario_key(scenario: str) -> tuple:
    return (SCENARIOS.index(scenario), "") if scenario in SCENARIOS else (len(SCENARIOS), scenario)


def setting_key(setting: str) -> tuple:
    if setting == "iid":
        return (0, "", 0.0, "")
    m = _SETTING_RE.match(setting)
    if m:
        try:
            return (1, m.group(1), _SETTING_DIR[m.group(1)] * float(m.group(2)), "")
        except ValueError:
            pass
    return (2, "", 0.0, setting)


def column_key(column: tuple[str, str]) -> tuple:
    return (scenario_key(column[0]), setting_key(column[1]))


def setting_label(setting: str) -> str:
    """alpha0.5 -> α=0.5, k3 -> k=3; other settings unchanged."""
    m = _SETTING_RE.match(setting)
    return f"{_SETTING_LABEL[m.group(1)]}={m.group(2)}" if m else setting


def is_baseline(method: str) -> bool:
    return method in BASELINE_ORDER


def method_key(method: str) -> tuple:
    if method in BASELINE_ORDER:
        return (0, BASELINE_ORDER.index(method), 0, "")
    for i, base in enumerate(ALGORITHM_ORDER):
        if method == base or method.startswith(base + "+"):
            suffix = method[len(base):]
            rank = SUFFIX_ORDER.index(suffix) if suffix in SUFFIX_ORDER else len(SUFFIX_ORDER)
            return (1, i, rank, suffix)
    return (2, 0, 0, method)


def _seed_key(seed: str) -> tuple:
    try:
        return (0, float(seed), "")
    except ValueError:
        return (1, 0.0, seed)


def run_sort_key(run: Run) -> tuple:
    return (run.dataset, scenario_key(run.scenario), setting_key(run.setting), method_key(run.method),
            _seed_key(run.seed), str(run.path))


def is_fraction(metric: str) -> bool:
    name = metric.rsplit(".", 1)[-1]
    return not any(name == n or name.endswith("_" + n) for n in NOT_FRACTIONS)


def lower_is_better(metric: str) -> bool:
    name = metric.rsplit(".", 1)[-1]
    return name in ("nll", "loss") or name.endswith("_nll") or name.endswith("_loss")


def primary_metric(runs: list[Run]) -> str:
    """The dataset's headline metric: the one its runs declare (the most common), else accuracy."""
    declared = [r.primary_metric for r in runs if r.primary_declared]
    if not declared:
        return "accuracy"
    return max(dict.fromkeys(declared), key=declared.count)


def safe_name(*parts: str) -> str:
    """A filesystem-safe file stem from labels."""
    return "_".join(re.sub(r"[^A-Za-z0-9.-]+", "-", p).strip("-.") or "x" for p in parts)
