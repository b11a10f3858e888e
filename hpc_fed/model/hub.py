"""Models named by a Hugging Face Hub id: whether one can load here, pinned remote code, and the
download that makes a run possible on machines without internet.

Cluster compute nodes often have no internet. There, huggingface_hub retries every file with
back-off (measured: 60 retry lines and 2.5 min before one error for a LLaVA id), so a Hub id is
checked first, once per process: with HF_HUB_OFFLINE=1, or when one request to the Hub endpoint
fails (within PROBE_TIMEOUT_S), a model in the local cache (HF_HOME / HF_HUB_CACHE) loads from
there without any network call, and one that is not cached stops in seconds with one line naming
the route: `hpc-fed download --config C` once where there is internet (a login node, same
HF_HOME), then run offline from the cache.

A Hub id with model.trust_remote_code=true runs Python code from the Hub: it must name the commit
(model.revision), so that a later push to the model repository cannot change what a run executes.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from hpc_fed.errors import ConfigError

PROBE_TIMEOUT_S = 5.0
_COMMIT = re.compile(r"[0-9a-f]{40}")


def is_hub_id(where: str) -> bool:
    """`org/name` that is not a folder here: what from_pretrained would fetch from the Hub."""
    p = Path(where)
    return not (p.is_absolute() or where.startswith((".", "~")) or p.exists() or len(p.parts) != 2)


def is_commit(revision: str) -> bool:
    return bool(_COMMIT.fullmatch(revision or ""))


def check_remote_code(path: str, trust_remote_code: bool, revision: str, allow_unpinned: bool) -> None:
    """Refuse to run a Hub id's own code without a pinned commit (model.revision)."""
    if not trust_remote_code or allow_unpinned or not is_hub_id(path) or is_commit(revision):
        return
    given = f"model.revision ({revision}) is not a commit hash" if revision else "model.revision is not set"
    raise ConfigError(f"model.trust_remote_code=true runs code from the Hub id {path}, and {given}; "
                      "pin the 40-character commit (model.revision=<sha>: `hpc-fed download --config "
                      "CONFIG` prints the one it fetched), or accept whatever the Hub holds now with "
                      "model.allow_unpinned_remote_code=true")


def offline_mode() -> bool:
    """HF_HUB_OFFLINE=1 (read by huggingface_hub when it is imported)."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


@lru_cache(maxsize=None)
def hub_reachable(endpoint: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether one HEAD request to the Hub endpoint gets any answer (proxies as configured)."""
    from huggingface_hub.utils import get_session

    try:
        get_session().head(endpoint, timeout=timeout)
    except Exception:  # noqa: BLE001 - any failure means unreachable; the transport's error classes differ between huggingface_hub releases
        return False
    return True


def cached_snapshot(repo_id: str, revision: str = "") -> Path | None:
    """The cached snapshot folder of a Hub model at `revision` (default branch: ""), or None."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "config.json", revision=revision or None)
    return Path(found).parent if isinstance(found, str) else None


def loadable(where: str, revision: str = "") -> str:
    """What from_pretrained loads for `where`: itself (a folder, or a Hub id while the Hub
    answers), or for a Hub id out of reach its cached snapshot folder (from_pretrained's own
    offline path still asks the Hub for optional files, with retries); a ConfigError in seconds,
    one line, for a Hub id that is neither reachable nor cached."""
    from huggingface_hub import constants

    if not is_hub_id(where):
        return where
    offline = offline_mode()
    if not offline and hub_reachable(constants.ENDPOINT):
        return where
    snapshot = cached_snapshot(where, revision)
    if snapshot is not None:
        return str(snapshot)
    why = "HF_HUB_OFFLINE=1 is set" if offline else f"{constants.ENDPOINT} does not answer"
    at = f" at revision {revision}" if revision else ""
    raise ConfigError(f"model.path ({where}) is a Hub id{at} that is not in the local cache "
                      f"({constants.HF_HUB_CACHE}) and {why}; fetch it once on a machine with internet "
                      "(a login node) with `hpc-fed download --config CONFIG` under the same HF_HOME, "
                      "then run here (with HF_HUB_OFFLINE=1 nothing is requested from the network)")


def download_model(repo_id: str, revision: str = "") -> Path:
    """Fetch every file of a Hub model at `revision` into the Hub cache; its snapshot folder,
    named by the commit it resolved to."""
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id, revision=revision or None))


def download_dataset(repo_id: str, local_dir: str, revision: str = "") -> Path:
    """Fetch a Hub dataset repository into `local_dir` (what data.root then names)."""
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id, repo_type="dataset", local_dir=local_dir,
                                  revision=revision or None))
