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

from hpc_fed.model.config import TINY, ModelConfig

log = logging.getLogger(__name__)


def build_tiny_atomically(path: Path, tiny_cfg) -> dict:
    """Build into a temporary sibling folder and rename, so a half-built model never appears."""
    from hpc_fed.model.tiny import make_tiny_model

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        manifest = make_tiny_model(tmp, tiny_cfg)
        if path.exists() and is_stale_tiny(path):  # replace an outdated build
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}-old-", dir=path.parent))
            os.rename(path, old / "model")
            shutil.rmtree(old, ignore_errors=True)
        try:
            os.rename(tmp, path)
        except OSError:  # another process finished first: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
        return manifest
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def is_stale_tiny(path: Path) -> bool:
    """A tiny model built by an older hpc_fed (its vocabulary lacks newer prompt words)."""
    from hpc_fed.model.tiny import FORMAT, MANIFEST

    manifest = path / MANIFEST
    if not manifest.is_file():
        return False  # not our tiny model: never touched
    try:
        return json.loads(manifest.read_text()).get("format", 1) < FORMAT
    except (OSError, ValueError):
        return True


def ensure_model(cfg: ModelConfig, comm) -> None:
    """Rank 0 of `comm` (the world) builds the tiny model if needed; every rank waits for it."""
    path = Path(cfg.tiny.dir)
    stale = path.exists() and is_stale_tiny(path)
    if cfg.path == TINY and (stale or not path.exists()) and comm.rank == 0:
        log.info("model.tiny.dir %s %s: building the tiny model (cached for later runs)", path,
                 "holds an older tiny-model format" if stale else "does not exist")
        manifest = build_tiny_atomically(path, cfg.tiny)  # at BUILD_THREADS threads (tiny.py)
        log.info("tiny model built: %s", manifest)
    comm.barrier()
