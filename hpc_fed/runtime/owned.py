"""What hpc_fed may replace or remove: only what it wrote itself, as a marker it left there says.

  hpc_fed.json        in each folder hpc_fed writes as a whole, with the kind that wrote it:
                      `run` (hpc-fed train / launch and the benchmark runners), `eval`
                      (hpc-fed eval), `bench` (hpc-fed bench: its folder and measured runs)
  hpc_fed_tiny.json   the tiny model's manifest (hpc_fed/tiny/model.py)

A folder is claimed for a kind before anything is written in it: a new or empty folder gets the
marker; a folder whose marker names the same kind is used again; a folder of another kind, or a
non-empty folder without the marker (a user's folder), is refused in one line. A run directory of
an older hpc_fed, written before the marker existed, holds config.yaml and metrics.jsonl: it
counts as kind `run` and gets the marker when a run next starts in it.

Every removal goes through `remove_owned`, which checks the marker first. A single file written
at a path the user names (`data describe --json`, `hpc-fed report`'s tables and plots, a
sweep's job list) replaces an existing file only when its content shows hpc_fed wrote it
(`replace_problem` with the file kind's recogniser).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from hpc_fed.errors import ConfigError

MARKER = "hpc_fed.json"
KINDS = {  # kind -> what a folder of that kind is, and the folder its command makes when none is named
    "run": ("a training run", "runs/run-<time>"),
    "eval": ("an evaluation (hpc-fed eval)", "runs/eval-<time>"),
    "bench": ("a measurement (hpc-fed bench)", "runs/bench-<time>"),
}
LEGACY_RUN_FILES = ("config.yaml", "metrics.jsonl")  # a run directory written before MARKER existed


def folder_kind(folder: Path) -> str | None:
    """The kind `folder`'s marker records (`run` for a run directory of an older hpc_fed), or
    None: no marker (a user's folder, or nothing there)."""
    marker = folder / MARKER
    if marker.is_file():
        try:
            kind = json.loads(marker.read_text()).get("kind")
        except (OSError, ValueError, AttributeError):
            return None  # not a marker hpc_fed wrote
        return kind if kind in KINDS else None
    if all((folder / name).is_file() for name in LEGACY_RUN_FILES):
        return "run"
    return None


def claim_problem(folder: Path, kind: str, *, what: str) -> str | None:
    """Why a command of `kind` must not write into `folder` (named by `what`, e.g. output.dir),
    or None: it does not exist, is empty, or hpc_fed wrote it for the same kind."""
    if not folder.exists():
        return None
    if not folder.is_dir():
        return f"{what} {folder} is a file, not a folder; choose a folder for {what}"
    if not any(folder.iterdir()):
        return None
    found = folder_kind(folder)
    if found == kind:
        return None
    default = f"leave {what} out for a new {KINDS[kind][1]}, or choose another folder"
    if found is None:
        return (f"{what} {folder} holds files hpc_fed did not write (it has no {MARKER}), and "
                f"hpc_fed never replaces or removes those; {default}")
    return (f"{what} {folder} holds {KINDS[found][0]} ({MARKER}: kind {found}), which "
            f"{KINDS[kind][0]} never writes into; {default}")


def claim(folder: Path, kind: str, *, what: str) -> None:
    """Make `folder` hpc_fed's for `kind` (created, marked), or a ConfigError (claim_problem)."""
    problem = claim_problem(folder, kind, what=what)
    if problem:
        raise ConfigError(problem)
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / MARKER
    if not marker.is_file():  # a new folder, or a run directory of an older hpc_fed
        tmp = folder / f".{MARKER}.tmp"
        tmp.write_text(json.dumps({"written_by": "hpc_fed", "kind": kind}, indent=2) + "\n")
        tmp.replace(marker)


def remove_owned(target: Path, *, owner: Path, marker: str = MARKER) -> None:
    """Remove `target` (a file, or a folder with everything in it; nothing when absent), which is
    `owner` or lies inside it, only when `owner` holds `marker`, the file hpc_fed left there when
    it wrote it; a ConfigError naming both otherwise. A symbolic link is removed, never followed."""
    if target != owner and owner not in target.parents:
        raise ValueError(f"{target} is not inside {owner}")
    if not (owner / marker).is_file():
        raise ConfigError(f"{target} was not removed: {owner} has no {marker}, so hpc_fed did not "
                          "write it; move it away yourself if it should go")
    if target.is_symlink() or target.is_file():
        target.unlink(missing_ok=True)
    elif target.is_dir():
        shutil.rmtree(target, ignore_errors=True)  # a leftover (NFS .nfs* file) is not an error


def replace_problem(path: Path, ours: Callable[[Path], bool], *, what: str) -> str | None:
    """Why the single file at `path` (named by `what`) must not be written, or None: it does not
    exist, or `ours` recognises it as a file of the same kind that hpc_fed wrote."""
    if not path.exists() and not path.is_symlink():
        return None
    if path.is_file() and not path.is_symlink() and ours(path):
        return None
    return (f"{what} {path} exists and is not a file hpc_fed wrote, which it never replaces; choose "
            "another path, or move that file away")


def write_new_or_owned(path: Path, text: str, ours: Callable[[Path], bool], *, what: str) -> None:
    """Write `text` to `path` (through a temporary file, then a rename) unless replace_problem."""
    problem = replace_problem(path, ours, what=what)
    if problem:
        raise ConfigError(problem)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def json_with(*keys: str) -> Callable[[Path], bool]:
    """A recogniser: the file is a JSON object with all of `keys` (or a list of such objects)."""
    def ours(path: Path) -> bool:
        try:
            obj = json.loads(path.read_text())
        except (OSError, ValueError, UnicodeDecodeError):
            return False
        items = obj if isinstance(obj, list) else [obj]
        return bool(items) and all(isinstance(o, dict) and all(k in o for k in keys) for o in items)
    return ours


def starts_with(prefix: bytes, within: int = 0) -> Callable[[Path], bool]:
    """A recogniser: the file begins with `prefix` (or, with `within`, holds it in its first
    `within` bytes)."""
    def ours(path: Path) -> bool:
        try:
            with open(path, "rb") as f:
                head = f.read(max(within, len(prefix)))
        except OSError:
            return False
        return prefix in head if within else head.startswith(prefix)
    return ours
