"""`hpc-fed` command line: train, launch (torchrun on this node), bench, benchmark, sweep (submitit),
prepare (slurm/benchmark.sh), download (Hub models and datasets, on a login node), report, data
describe, config (show / fields / docs), make-tiny-model. Each subcommand with its
own parser lives in its package; this module only dispatches."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from pathlib import Path

from hpc_fed.errors import UsageError, command


PASS_THROUGH = {  # subcommands with their own parser: name -> (module, function)
    "train": ("hpc_fed.train", "main"),
    "benchmark": ("hpc_fed.launch.benchmark", "main"),
    "report": ("hpc_fed.report.cli", "main"),
    "sweep": ("hpc_fed.launch.sweep", "main"),
    "prepare": ("hpc_fed.launch.prepare", "main"),
    "launch": ("hpc_fed.launch.node", "main"),
    "bench": ("hpc_fed.bench.cli", "main"),
    "eval": ("hpc_fed.apps.eval", "main"),
    "predict": ("hpc_fed.apps.predict", "main"),
    "download": ("hpc_fed.launch.download", "main"),
    "config": ("hpc_fed.config.cli", "main"),
}


@command("hpc-fed make-tiny-model")
def _make_tiny(args) -> int:
    from hpc_fed.model.config import TinyModelConfig
    from hpc_fed.tiny.build import build_tiny_atomically

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    out = Path(args.dir)
    if out.exists() and not args.force:
        raise UsageError(f"{out} exists; pass --force to rebuild it")
    cfg = TinyModelConfig(prefit_steps=args.prefit_steps, prefit_questions=args.prefit_questions,
                          seed=args.seed)
    # --force replaces a tiny model (its manifest says so) once the new one is built
    manifest = build_tiny_atomically(out, cfg, replace=args.force)
    print(f"tiny model written to {out}: {manifest}")
    return 0


@command("hpc-fed data")
def _data_describe(args, rest: list[str]) -> int:
    """Print the partition table (clients x modality counts x labels) without training."""
    import json

    from hpc_fed.config import load_config
    from hpc_fed.data.federated import build_federated_data, describe_table, partition_summary
    from hpc_fed.runtime.owned import json_with, write_new_or_owned

    cfg = load_config(args.config, rest)
    summary = partition_summary(build_federated_data(cfg.data, cfg.fed.num_clients), cfg.data)
    print(describe_table(summary))
    if args.json:  # replaces only a partition hpc_fed wrote (a typo must not clobber another file)
        write_new_or_owned(Path(args.json), json.dumps(summary, indent=2) + "\n",
                           json_with("dataset", "scheme", "clients"), what="--json")
        print(f"partition written to {args.json}")
    return 0


def main(argv: list[str] | None = None) -> int:
    if argv is not None:
        return _main(argv, console=False)
    try:  # the `hpc-fed` command itself, not a call from Python
        return _main(sys.argv[1:], console=True)
    except BrokenPipeError:  # `hpc-fed benchmark --list | head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes stdout at exit
        return 0


def _main(argv: list[str], console: bool) -> int:
    if argv and argv[0] in PASS_THROUGH:
        module, name = PASS_THROUGH[argv[0]]
        code = getattr(importlib.import_module(module), name)(argv[1:])
        if console and argv[0] == "train":  # a rank's process: leave as `python -m hpc_fed.train` does
            from hpc_fed.distributed import exit_process

            exit_process(code)
        return code
    from hpc_fed.config import add_config_argument, config_argument

    p = argparse.ArgumentParser(prog="hpc-fed", description="Federated LoRA fine-tuning of MLLMs.")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("train", add_help=False, help="run in this process (world of 1) or under torchrun")
    sub.add_parser("launch", add_help=False, help="run with torchrun on this node (or on each of several)")
    mp = sub.add_parser(
        "make-tiny-model", help="build the offline tiny LLaVA-style model",
        description="Build the ~1M-parameter LLaVA-style model the offline runs use (a CLIP vision "
                    "tower, a Llama language model, a word-level tokenizer and a LlavaProcessor), "
                    "pre-fit it on easy-VQA's prefit slice, and save it to DIR, where "
                    "from_pretrained / model.path=DIR load it. Runs with model.path=tiny (the default) "
                    "build theirs at model.tiny.dir themselves; this command builds one elsewhere.",
        epilog="example: hpc-fed make-tiny-model /tmp/tiny --prefit-steps 0 (a random base, ~8 s)")
    mp.add_argument("dir", help="folder to write (refused if it exists, unless --force)")
    mp.add_argument("--prefit-steps", type=int, default=400,
                    help="pre-fit steps on easy-VQA's prefit slice (default 400, ~1.5 min on 2 "
                         "CPU cores; 0: a random base)")
    mp.add_argument("--prefit-questions", choices=("open", "all"), default="open",
                    help="open: shape / colour questions only (default); all: yes/no too")
    mp.add_argument("--seed", type=int, default=0, help="seed of the weights and the pre-fit")
    mp.add_argument("--force", action="store_true",
                    help="replace the tiny model in DIR (a folder without its hpc_fed_tiny.json is "
                         "never replaced)")
    dp = sub.add_parser(
        "data", help="inspect a config's federated data: `data describe --config C`",
        description="Load a config's dataset, partition it over fed.num_clients clients and apply "
                    "its scenario exactly as a run does, then print per client the samples, the "
                    "modality counts (both / image / text / neither) and the label histogram; "
                    "no model is loaded.",
        epilog="key=value overrides after the options change the config, e.g. "
               "hpc-fed data describe --config configs/benchmark/offline_base.yaml "
               "data.name=easyvqa_memes data.scenario=cross data.k=3 fed.num_clients=10")
    dp.add_argument("action", choices=("describe",))
    add_config_argument(dp, "run config (configs/*.yaml)")
    dp.add_argument("--json", help="also write the partition.json object to this file")
    sub.add_parser("benchmark", add_help=False,
                   help="run a benchmark matrix here (see configs/benchmark/)")
    sub.add_parser("bench", add_help=False,
                   help="measure where a round's time goes (compute, data, waiting, aggregation)")
    sub.add_parser("eval", add_help=False,
                   help="evaluate a saved adapter (or the base model) on a config's test set")
    sub.add_parser("predict", add_help=False,
                   help="ask a trained adapter one question, with an image and/or a text")
    sub.add_parser("report", add_help=False, help="tables (CSV, markdown) and plots from run directories")
    sub.add_parser("sweep", add_help=False,
                   help="submit a benchmark matrix with submitit (SLURM or local processes)")
    sub.add_parser("prepare", add_help=False,
                   help="resolve and check one launch (the first step of slurm/benchmark.sh)")
    sub.add_parser("download", add_help=False,
                   help="fetch a config's Hub model (or a Hub dataset) once, for runs without internet")
    sub.add_parser("config", add_help=False,
                   help="show a resolved config, list every key, write docs/configuration.md")
    args, rest = p.parse_known_args(argv)
    if args.cmd == "data":
        args.overrides = rest
        args.config = config_argument(args, dp)
        return _data_describe(args, args.overrides)
    if rest:
        p.error(f"unrecognized arguments: {' '.join(rest)}")
    return _make_tiny(args)


if __name__ == "__main__":
    sys.exit(main())
