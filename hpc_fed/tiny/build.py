"""Make sure the model exists before loading: with model.path=tiny, rank 0 builds the offline
tiny model into model.tiny.dir when it is missing or outdated. No other path is ever built: a
mistyped folder or a Hub id must not silently become a 0.8 M-parameter tiny model."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from hpc_fed.errors import ConfigError
from hpc_fed.model.config import TINY, ModelConfig
from hpc_fed.runtime.owned import remove_owned

log = logging.getLogger(__name__)


def replace_problem(path: Path) -> str | None:
    """Why `path` must not be replaced by a tiny model, or None: it does not exist, is an empty
    folder, or holds a tiny model (its manifest)."""
    from hpc_fed.tiny.model import MANIFEST

    if not path.exists() or (path.is_dir() and not any(path.iterdir())) or (path / MANIFEST).is_file():
        return None
    return (f"{path} is not a tiny model hpc_fed built (it has no {MANIFEST}), and hpc_fed never "
            "replaces or removes such a folder; choose another folder, or move it away")


def build_tiny_atomically(path: Path, tiny_cfg, replace: bool = False) -> dict:
    """Build into a temporary sibling folder and rename, so a half-built model never appears.
    A tiny model already at `path` is replaced when outdated, or always with `replace`, once the
    new one is built; anything else there is never touched (replace_problem)."""
    from hpc_fed.tiny.model import MANIFEST, make_tiny_model

    problem = replace_problem(path)
    if problem:  # before a build of minutes
        raise ConfigError(problem)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        manifest = make_tiny_model(tmp, tiny_cfg)
        if path.exists() and (replace or is_stale_tiny(path, tiny_cfg)) and (path / MANIFEST).is_file():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}-old-", dir=path.parent))
            os.rename(path, old / "model")
            remove_owned(old / "model", owner=old / "model", marker=MANIFEST)
            old.rmdir()
        try:
            os.rename(tmp, path)  # also onto an empty folder
        except OSError:  # another process finished first: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)  # made by this call, above
        return manifest
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # made by this call, above
        raise


def stale_reason(path: Path, tiny_cfg=None) -> str | None:
    """Why the tiny model cached at `path` must be rebuilt, or None: built by an older format, or
    (given the config) by other build code, pre-fit settings or library versions (tiny.recipe).
    A folder without our manifest is not our tiny model and is never touched."""
    from hpc_fed.tiny.model import FORMAT, MANIFEST, recipe

    manifest = path / MANIFEST
    if not manifest.is_file():
        return None
    try:
        built = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return "its manifest is unreadable"
    if built.get("format", 1) < FORMAT:
        return "it holds an older tiny-model format"
    current = recipe(tiny_cfg) if tiny_cfg is not None else None
    if current is not None and built.get("recipe") != current:
        return ("it was built by other build code, pre-fit settings or library versions "
                f"(recipe {built.get('recipe')}, this checkout's {current})")
    return None


def is_stale_tiny(path: Path, tiny_cfg=None) -> bool:
    return stale_reason(path, tiny_cfg) is not None


def ensure_model(cfg: ModelConfig, comm) -> None:
    """Rank 0 of `comm` (the world) builds the tiny model if needed; every rank waits for it."""
    path = Path(cfg.tiny.dir)
    if cfg.path == TINY and comm.rank == 0:
        reason = stale_reason(path, cfg.tiny) if path.exists() else None
        if reason:
            log.warning("model.tiny.dir %s: %s; rebuilding the tiny model (results made on the "
                        "old one are not comparable with new ones)", path, reason)
        elif not path.exists():
            log.info("model.tiny.dir %s does not exist: building the tiny model (cached for "
                     "later runs)", path)
        if reason or not path.exists():
            manifest = build_tiny_atomically(path, cfg.tiny)  # at BUILD_THREADS threads (tiny.py)
            log.info("tiny model built: %s", manifest)
    comm.barrier()
