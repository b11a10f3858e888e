"""The benchmark matrix: one YAML file -> an ordered list of runs (entries). Pure, no side effects.

Format (every key is validated; errors are ConfigError naming the file, the key and the fix)::

    name: offline                      # optional, default: the file's stem
    base: configs/benchmark/offline_base.yaml   # run config; relative to the cwd, else to this file
    overrides: [fed.rounds=6]          # optional, applied to every entry
    output_root: runs/benchmark/offline         # optional, default runs/benchmark/<name>
    nproc: 2                           # optional, default 1: processes per entry (hpc-fed launch)
    jobs: 2                            # optional, default 1: entries run at once by --local
    seeds: [0, 1]                      # optional, default [0]
    seed_keys: [fed.seed, train.seed, data.seed]  # optional, default this: each key set to the seed
    datasets:                          # name -> overrides (at least one)
      claims: [data.name=easyvqa_claims]
    scenarios:                         # aligned | missing | cross | hybrid -> key and values
      aligned: {key: data.alpha, values: [5.0, 1.0, 0.5]}
      missing: {key: data.beta, values: [0.3, 0.4, 0.5]}
    methods:                           # name -> overrides (at least one)
      FedAvg: [fed.algorithm=fedavg]
    baselines:                         # optional; name -> overrides and scope
      Zero-shot: {overrides: [baseline=zero_shot], per: dataset}   # once per dataset and seed
      Local: {overrides: [baseline=local], per: setting}           # once per dataset x setting x seed

Each value of a scenario is a *setting*: overrides `data.scenario=<scenario>` and `<key>=<value>`,
named after the key's last component and the value as written (alpha5.0, beta0.3, k3, p0.8).

Entry names are `<dataset>/<scenario>-<setting>/<method or baseline>/seed<seed>`; per-dataset
baselines use `all` for the setting part (`claims/all/Zero-shot/seed0`). Each entry runs in
`output_root/<name>` (components made filesystem-safe) and gets, in this order, the overrides:
matrix `overrides`, the dataset's, the setting's, the method's or baseline's, the seed keys,
`output.dir=<run_dir>`, and `output.tags.{dataset,scenario,setting,method,seed}=...`
(scenario and setting are `all` for per-dataset baselines).

Order (and so `Entry.index`, 0-based): for each dataset in file order, its per-dataset baselines;
then for each scenario in file order and each of its values in file order, the per-setting
baselines and then the methods (file order); seeds vary innermost. The index depends only on the
YAML's content, so `--index I` (and a SLURM job array's `SLURM_ARRAY_TASK_ID`) always names the
same run for the same file; editing the matrix can shift indices.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hpc_fed.data.scenarios import SCENARIOS
from hpc_fed.errors import ConfigError

BASELINE_SCOPES = ("dataset", "setting")
DEFAULT_SEED_KEYS = ("fed.seed", "train.seed", "data.seed")
TOP_LEVEL_KEYS = ("name", "base", "overrides", "output_root", "nproc", "jobs", "seeds", "seed_keys",
                  "datasets", "scenarios", "methods", "baselines")
# results.json["tags"] of a benchmark entry (`hpc-fed report` groups runs by them)
TAG_KEYS = ("dataset", "scenario", "setting", "method", "seed")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")


@dataclass
class Entry:
    """One run of the matrix."""

    index: int  # 0-based position in the expansion order (stable for a given file)
    name: str  # dataset/scenario-setting/method/seedN, e.g. claims/missing-beta0.3/FedAvg/seed0
    run_dir: Path  # output_root / filesystem-safe name components
    overrides: list[str]  # key=value, passed after `--config <base>`
    tags: dict[str, str]  # dataset, scenario, setting, method, seed (also in the overrides)

    @property
    def results_path(self) -> Path:
        return self.run_dir / "results.json"

    @property
    def log_path(self) -> Path:
        return self.run_dir / "log.txt"

    @property
    def done(self) -> bool:
        """A run is done when its results.json exists (runs write it last, atomically)."""
        return self.results_path.is_file()


@dataclass
class Matrix:
    name: str
    base: str  # the run config path, as resolved (relative to the cwd or absolute)
    nproc: int
    output_root: Path
    entries: list[Entry]
    source: Path | None = None  # the matrix YAML
    seeds: list[int] = field(default_factory=list)
    jobs: int = 1  # entries `--local` runs at once


def safe_component(text: str) -> str:
    """A filesystem-safe path component: spaces and other odd characters become `_`."""
    out = _UNSAFE.sub("_", text.strip())
    return "_" if out in ("", ".", "..") else out


def format_value(value: Any) -> str:
    """A scalar as written in the YAML (5.0 -> "5.0", 3 -> "3", true -> "true")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def select(entries: list[Entry], only: str | None = None, index: int | None = None) -> list[Entry]:
    """Entries whose name matches the fnmatch pattern `only` and/or whose index is `index`."""
    out = entries
    if index is not None:
        out = [e for e in out if e.index == index]
    if only:
        out = [e for e in out if fnmatch.fnmatchcase(e.name, only)]
    return out


def listing(command: str, matrix: "Matrix", entries: list[Entry], per_entry: str = "") -> str:
    """What `--list` prints (benchmark and sweep): a summary line, then the entries' table."""
    done = sum(e.done for e in entries)
    head = (f"{command} {matrix.name}: {len(entries)} of {len(matrix.entries)} entries, {done} done "
            f"(results.json under {matrix.output_root}); base {matrix.base}{per_entry}")
    return head + "\n" + format_table(entries)


def format_table(entries: list[Entry]) -> str:
    """`--list`: one row per entry with its index, whether it is done, and its name."""
    width = max([len("index")] + [len(str(e.index)) for e in entries])
    lines = [f"{'index':>{width}}  done  name"]
    for e in entries:
        lines.append(f"{e.index:>{width}}  {'yes ' if e.done else '-   '}  {e.name}")
    return "\n".join(lines)


# --- parsing and validation ------------------------------------------------------------------

class _Checker:
    def __init__(self, path: Path):
        self.path = path

    def fail(self, key: str, problem: str, fix: str) -> None:
        raise ConfigError(f"benchmark matrix {self.path}: {key}: {problem}; {fix}")

    def overrides(self, key: str, value: Any) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(key, f"must be a list of key=value strings, got {value!r}",
                      f"write e.g. {key}: [fed.rounds=3]")
        out = []
        for item in value:
            if not isinstance(item, str) or "=" not in item or not item.split("=", 1)[0].strip():
                self.fail(key, f"override {item!r} is not key=value",
                          "write each override as a string like fed.rounds=3 (quote it if needed)")
            out.append(item.strip())
        return out

    def mapping(self, key: str, value: Any, required: bool) -> dict:
        if value is None and not required:
            return {}
        if not isinstance(value, dict) or not value:
            self.fail(key, "is missing or empty" if value is None or value == {} else
                      f"must be a mapping of name -> ..., got {value!r}",
                      f"add at least one entry under {key}: (see hpc_fed/benchmark/matrix.py)")
        for name in value:
            if not isinstance(name, str) or not name.strip() or "/" in name:
                self.fail(f"{key}.{name}", "names must be non-empty strings without '/'",
                          "rename it")
        return value


def _resolve_base(check: _Checker, base: Any) -> str:
    if not isinstance(base, str) or not base:
        check.fail("base", "is missing", "set base: to a run config YAML, e.g. configs/quickstart.yaml")
    if Path(base).is_file():
        return base
    beside = check.path.parent / base
    if beside.is_file():
        return str(beside)
    check.fail("base", f"file {base!r} does not exist (looked in the current directory and in "
               f"{check.path.parent})", "point base: at an existing run config YAML")
    return ""  # not reached


@dataclass
class _Part:
    """A dataset, setting, method or baseline: its name and overrides."""

    name: str
    overrides: list[str]


def expand(path: str | Path, validate: bool = True) -> Matrix:
    """Read and validate a matrix YAML; return its entries in their stable order.

    With `validate` (the default) every entry's overrides are checked against the run schema
    with `hpc_fed.config.load_config`, so a typo fails before any run starts.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"benchmark matrix {path} does not exist; pass an existing YAML file")
    check = _Checker(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"benchmark matrix {path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        check.fail("(top level)", "must be a mapping", "start from configs/benchmark/*.yaml")
    unknown = [k for k in raw if k not in TOP_LEVEL_KEYS]
    if unknown:
        check.fail(str(unknown[0]), "unknown key", f"use only {', '.join(TOP_LEVEL_KEYS)}")

    name = raw.get("name", path.stem)
    if not isinstance(name, str) or not name.strip():
        check.fail("name", f"must be a non-empty string, got {name!r}", "e.g. name: offline")
    base = _resolve_base(check, raw.get("base"))
    common = check.overrides("overrides", raw.get("overrides"))
    output_root = raw.get("output_root", f"runs/benchmark/{safe_component(name)}")
    if not isinstance(output_root, str) or not output_root:
        check.fail("output_root", f"must be a directory path, got {output_root!r}",
                   "e.g. output_root: runs/benchmark/offline")
    nproc = raw.get("nproc", 1)
    if not isinstance(nproc, int) or isinstance(nproc, bool) or nproc < 1:
        check.fail("nproc", f"must be an integer >= 1, got {nproc!r}", "e.g. nproc: 2")
    jobs = raw.get("jobs", 1)
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        check.fail("jobs", f"must be an integer >= 1, got {jobs!r}", "e.g. jobs: 2")
    seeds = raw.get("seeds", [0])
    if (not isinstance(seeds, list) or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)):
        check.fail("seeds", f"must be a non-empty list of integers, got {seeds!r}", "e.g. seeds: [0, 1]")
    if len(set(seeds)) != len(seeds):
        check.fail("seeds", f"has duplicates: {seeds}", "list each seed once")
    seed_keys = raw.get("seed_keys", list(DEFAULT_SEED_KEYS))
    if (not isinstance(seed_keys, list) or not seed_keys
            or not all(isinstance(k, str) and k and "=" not in k for k in seed_keys)):
        check.fail("seed_keys", f"must be a non-empty list of config keys, got {seed_keys!r}",
                   "e.g. seed_keys: [fed.seed, train.seed]")

    datasets = [_Part(str(n), check.overrides(f"datasets.{n}", o))
                for n, o in check.mapping("datasets", raw.get("datasets"), True).items()]
    methods = [_Part(str(n), check.overrides(f"methods.{n}", o))
               for n, o in check.mapping("methods", raw.get("methods"), True).items()]
    settings: list[tuple[str, _Part]] = []  # (scenario, setting)
    for scenario, spec in check.mapping("scenarios", raw.get("scenarios"), True).items():
        key = f"scenarios.{scenario}"
        if scenario not in SCENARIOS:
            check.fail(key, "unknown scenario", f"use one of {', '.join(SCENARIOS)}")
        if not isinstance(spec, dict) or set(spec) != {"key", "values"}:
            check.fail(key, f"must be {{key: <config key>, values: [...]}}, got {spec!r}",
                       f"e.g. {scenario}: {{key: data.beta, values: [0.3, 0.5]}}")
        cfg_key, values = spec["key"], spec["values"]
        if not isinstance(cfg_key, str) or not cfg_key or "=" in cfg_key:
            check.fail(f"{key}.key", f"must be a config key, got {cfg_key!r}", "e.g. key: data.beta")
        if not isinstance(values, list) or not values:
            check.fail(f"{key}.values", f"must be a non-empty list, got {values!r}",
                       "e.g. values: [0.3, 0.5]")
        for v in values:
            if not isinstance(v, (int, float, str, bool)):
                check.fail(f"{key}.values", f"value {v!r} is not a scalar", "use numbers or strings")
        short = cfg_key.rsplit(".", 1)[-1]
        for v in values:
            text = format_value(v)
            settings.append((scenario, _Part(f"{short}{text}",
                                             [f"data.scenario={scenario}", f"{cfg_key}={text}"])))
    baselines: list[tuple[str, _Part]] = []  # (per, baseline)
    for bname, spec in check.mapping("baselines", raw.get("baselines"), False).items():
        key = f"baselines.{bname}"
        if not isinstance(spec, dict) or not set(spec) <= {"overrides", "per"}:
            check.fail(key, f"must be {{overrides: [...], per: dataset|setting}}, got {spec!r}",
                       f"e.g. {bname}: {{overrides: [baseline=local], per: setting}}")
        per = spec.get("per")
        if per not in BASELINE_SCOPES:
            check.fail(f"{key}.per", f"must be dataset or setting, got {per!r}",
                       "per: dataset runs once per dataset and seed, per: setting once per "
                       "dataset, setting and seed")
        baselines.append((per, _Part(str(bname), check.overrides(f"{key}.overrides",
                                                                  spec.get("overrides")))))

    entries: list[Entry] = []
    root = Path(output_root)

    def add(dataset: _Part, scenario: str | None, setting: _Part | None, method: _Part) -> None:
        """Entries for each seed; scenario and setting None: a per-dataset baseline ("all")."""
        setting = setting or _Part("all", [])
        for seed in seeds:
            parts = [dataset.name, f"{scenario}-{setting.name}" if scenario else "all",
                     method.name, f"seed{seed}"]
            run_dir = root.joinpath(*(safe_component(p) for p in parts))
            tags = {"dataset": dataset.name, "scenario": scenario or "all", "setting": setting.name,
                    "method": method.name, "seed": str(seed)}
            overrides = [*common, *dataset.overrides, *setting.overrides, *method.overrides,
                         *(f"{k}={seed}" for k in seed_keys), f"output.dir={run_dir}",
                         *(f"output.tags.{k}={tags[k]}" for k in TAG_KEYS)]
            entries.append(Entry(len(entries), "/".join(parts), run_dir, overrides, tags))

    for dataset in datasets:
        for per, baseline in baselines:
            if per == "dataset":
                add(dataset, None, None, baseline)
        for scenario, setting in settings:
            for per, baseline in baselines:
                if per == "setting":
                    add(dataset, scenario, setting, baseline)
            for method in methods:
                add(dataset, scenario, setting, method)

    seen: dict[str, Entry] = {}
    for e in entries:
        for label in (e.name, str(e.run_dir)):
            if label in seen:
                check.fail("(entries)", f"two entries share the name or directory {label!r} "
                           f"(entries {seen[label].index} and {e.index})",
                           "give methods, baselines and datasets distinct names and list each "
                           "scenario value once")
            seen[label] = e
    matrix = Matrix(name=name, base=base, nproc=nproc, output_root=root, entries=entries,
                    source=path, seeds=list(seeds), jobs=jobs)
    if validate:
        validate_entries(matrix, seed_keys)
    return matrix


def validate_entries(matrix: Matrix, seed_keys: list[str] | tuple[str, ...] = DEFAULT_SEED_KEYS) -> None:
    """Check entries against the run schema with `load_config(base, overrides)`.

    Entries that differ only by seed (and so output dir and tags) share their other overrides,
    so one entry per such group is loaded, plus one per seed: every override is still checked.
    """
    from hpc_fed.config import load_config

    generated = tuple(f"{k}=" for k in seed_keys) + ("output.dir=", "output.tags.")
    groups: set[tuple[str, ...]] = set()
    seeds: set[str] = set()
    for e in matrix.entries:
        group = tuple(o for o in e.overrides if not o.startswith(generated))
        if group in groups and e.tags["seed"] in seeds:
            continue
        groups.add(group)
        seeds.add(e.tags["seed"])
        try:
            load_config(matrix.base, e.overrides)
        except ConfigError as exc:
            raise ConfigError(f"benchmark matrix {matrix.source}: entry {e.index} ({e.name}): {exc}") \
                from None
