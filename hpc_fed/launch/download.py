"""`hpc-fed download`: fetch what a run needs from the Hugging Face Hub once, on a machine with
internet (a cluster's login node), so that runs on compute nodes without internet load it from
the local cache (the same HF_HOME / HF_HUB_CACHE; set HF_HUB_OFFLINE=1 there).

  hpc-fed download --config configs/paper/hateful_memes.yaml     # the config's model.path
  hpc-fed download --config C model.path=llava-hf/llava-1.5-7b-hf --dry-run   # the plan only
  hpc-fed download --dataset neuralcatcher/hateful_memes --local-dir /data/hateful_memes

A model is fetched at model.revision; without a commit hash there, at the default branch, and the
command prints the commit it got: pin it with model.revision=<commit> (required when
model.trust_remote_code=true, since the model's own code runs). hpc_fed reads datasets from disk
(data.root), so a Hub dataset is copied into a folder (--dataset ID --local-dir DIR), which
data.root then names. Gated models and datasets need a token first (`hf auth login` or HF_TOKEN).
"""

from __future__ import annotations

import argparse
import sys

from hpc_fed.errors import HpcFedError, command


def build_parser() -> argparse.ArgumentParser:
    from hpc_fed.config import add_config_argument

    p = argparse.ArgumentParser(prog="hpc-fed download", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_argument(p, "run config whose model.path to fetch (configs/*.yaml)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. model.revision=<commit>")
    p.add_argument("--dataset", metavar="ID", help="a Hub dataset repository to copy instead")
    p.add_argument("--local-dir", metavar="DIR", help="where --dataset is copied (then data.root=DIR)")
    p.add_argument("--revision", default="", help="revision of --dataset (default: its default branch)")
    p.add_argument("--dry-run", action="store_true", help="print what would be fetched; no network")
    return p


def _require_network() -> None:
    from huggingface_hub import constants

    from hpc_fed.model.hub import hub_reachable, offline_mode

    if offline_mode():
        raise HpcFedError("HF_HUB_OFFLINE=1 is set: downloading needs the network; unset it on a "
                          "machine with internet (a login node)")
    if not hub_reachable(constants.ENDPOINT):
        raise HpcFedError(f"{constants.ENDPOINT} does not answer: run hpc-fed download on a machine "
                          "with internet (a login node), with the HF_HOME the runs use")


def _fetch(what: str, fetch):
    """Run a huggingface_hub download, its failure as one line."""
    from huggingface_hub.errors import HfHubHTTPError

    try:
        return fetch()
    except (HfHubHTTPError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise HpcFedError(f"{what} cannot be downloaded: {first} (a gated or private repository "
                          "needs `hf auth login` or HF_TOKEN first)") from None


def download_dataset(args) -> None:
    from hpc_fed.model.hub import download_dataset as fetch

    if not args.local_dir:
        raise HpcFedError("--dataset needs --local-dir DIR (the folder data.root will name)")
    at = f" at {args.revision}" if args.revision else ""
    if args.dry_run:
        print(f"would copy the Hub dataset {args.dataset}{at} into {args.local_dir}")
        return
    _require_network()
    path = _fetch(f"dataset {args.dataset}", lambda: fetch(args.dataset, args.local_dir, args.revision))
    print(f"dataset {args.dataset}{at} copied into {path}; runs read it with data.root={path}")


def download_model(args) -> None:
    from huggingface_hub import constants

    from hpc_fed.config import load_model_config, require_config
    import hpc_fed.model.hub as hub
    from hpc_fed.model.config import TINY

    model = load_model_config(require_config(args.config, "hpc-fed download"), args.overrides)
    if model.path == TINY:
        print("model.path=tiny: the offline tiny model is built locally on first use; nothing to download")
        return
    if not hub.is_hub_id(model.path):
        print(f"model.path ({model.path}) is a folder here; nothing to download")
        return
    at = f"revision {model.revision}" if model.revision else "the default branch (not pinned)"
    if args.dry_run:
        cached = hub.cached_snapshot(model.path, model.revision)
        state = f"; in the cache already (commit {cached.name})" if cached else ""
        print(f"would fetch {model.path} at {at} into {constants.HF_HUB_CACHE}{state}")
        return
    _require_network()
    path = _fetch(f"model.path ({model.path})", lambda: hub.download_model(model.path, model.revision))
    print(f"{model.path} at commit {path.name} is in {path}")
    if model.trust_remote_code and not hub.is_commit(model.revision):
        print(f"its code runs (model.trust_remote_code=true): pin it with model.revision={path.name}")
    print("runs without internet load it from this cache: the same HF_HOME, and HF_HUB_OFFLINE=1")


@command("hpc-fed download")
def main(argv: list[str] | None = None) -> int:
    from hpc_fed.config import config_argument

    parser = build_parser()
    args = parser.parse_intermixed_args(argv)
    if args.dataset:
        download_dataset(args)
    else:
        args.config = config_argument(args, parser)
        download_model(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
