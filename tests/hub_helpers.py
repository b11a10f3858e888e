"""A local stand-in for the Hugging Face Hub cache, and an environment in which no process can
reach the real Hub: for the tests of Hub ids on machines without internet."""

from __future__ import annotations

import shutil
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"
CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens, connections are refused


def hub_cache(root: Path, repo_id: str, model_dir: str, commit: str = COMMIT) -> Path:
    """A Hub cache in huggingface_hub's layout holding the folder `model_dir` as `repo_id` at
    `commit`, its default branch: models--org--name/snapshots/<commit>/..., refs/main."""
    repo = root / ("models--" + repo_id.replace("/", "--"))
    shutil.copytree(model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return root


def hub_env(tmp_path: Path, cache: Path | None = None, offline: bool = True) -> dict:
    """HF_HOME / HF_HUB_CACHE under `tmp_path` (or `cache`), the Hub endpoint a closed port, and
    HF_HUB_OFFLINE as asked."""
    return {"HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_CACHE": str(cache or tmp_path / "empty_cache"),
            "HF_ENDPOINT": CLOSED, "HF_HUB_OFFLINE": "1" if offline else "0"}
