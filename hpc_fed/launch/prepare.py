"""`hpc-fed prepare CONFIG [--index I] [--nnodes N --nproc-per-node P] [k=v ...]`.

The first step of slurm/benchmark.sh, run once on the batch node before any `srun`: it resolves
the run (a run config, or entry I of a benchmark matrix), validates the config and the world
layout, and prints bash assignments the script `eval`s::

    HPC_FED_NAME=memes/missing-beta0.3/FedAvg/seed0
    HPC_FED_RUN_DIR=runs/benchmark/offline/memes/missing-beta0.3/FedAvg/seed0
    HPC_FED_TRAIN_ARGS=(--config configs/benchmark/offline_base.yaml data.name=easyvqa_memes ...)

Exit status: 0 ready; 2 a bad config or layout (the message names the fix); 3 the matrix entry
is already done (its results.json exists; --force runs it again).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import replace
from pathlib import Path

from hpc_fed.errors import UsageError, command

EXIT_DONE = 3  # the entry is done already: nothing to run


def build_parser() -> argparse.ArgumentParser:
    from hpc_fed.config import add_config_argument

    p = argparse.ArgumentParser(prog="hpc-fed prepare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_argument(p, "run config (configs/*.yaml) or matrix (configs/benchmark/*.yaml)")
    p.add_argument("overrides", nargs="*", help="key=value overrides of the run config")
    p.add_argument("--index", type=int, metavar="I", help="matrix entry (SLURM_ARRAY_TASK_ID)")
    p.add_argument("--nnodes", type=int, default=1, help="nodes of the launch (SLURM_NNODES)")
    p.add_argument("--nproc-per-node", type=int, default=1, help="processes per node")
    p.add_argument("--force", action="store_true", help="prepare a matrix entry that is already done")
    return p


@command("hpc-fed prepare")  # an error exits 2 (HpcFedError.exit_code), as slurm/benchmark.sh expects
def main(argv: list[str] | None = None) -> int:
    from hpc_fed.config import config_argument, load_config
    from hpc_fed.distributed.backend import visible_gpus
    from hpc_fed.launch.plan import check_inputs, check_layout, resolve
    from hpc_fed.runs.rundir import run_dir_name

    parser = build_parser()
    args = parser.parse_intermixed_args(argv)
    args.config = config_argument(args, parser)
    bad = [o for o in args.overrides if "=" not in o]
    if bad:
        raise UsageError(f"override {bad[0]!r} is not key=value (e.g. fed.rounds=3)")
    spec = resolve(args.config, args.index, args.overrides)
    cfg = load_config(spec.config, spec.overrides)
    finished = spec.done or bool(cfg.output.dir and (Path(cfg.output.dir) / "results.json").is_file())
    if finished and args.force:  # rerun: the finished run is replaced once the new one starts
        spec = replace(spec, overrides=[*spec.overrides, "output.overwrite=true"])
        cfg = load_config(spec.config, spec.overrides)
    # run on the batch node, the first node of the allocation: its GPUs are the nodes' GPUs
    layout = check_layout(cfg, args.nnodes, args.nproc_per_node, visible_gpus())
    what = f"entry [{spec.index}] {spec.name}" if spec.index is not None else spec.name
    if spec.done and not args.force:
        print(f"hpc-fed prepare: {what} is already done ({cfg.output.dir}/results.json exists); "
              "nothing to run (--force, or FORCE=1 for slurm/benchmark.sh, reruns it)", file=sys.stderr)
        return EXIT_DONE
    problem = check_inputs(cfg, args.nnodes * args.nproc_per_node)  # model, data, output.dir
    if problem:
        raise UsageError(problem + " (or FORCE=1 to rerun a finished run)")
    run_dir = cfg.output.dir or run_dir_name(cfg)
    if not cfg.output.dir:  # named here, so the batch script finds the run's outcome
        spec = replace(spec, overrides=[*spec.overrides, f"output.dir={run_dir}"])
    print(f"hpc-fed prepare: {what}: {layout}; run directory {run_dir}", file=sys.stderr)
    print(f"HPC_FED_NAME={shlex.quote(spec.name)}")
    print(f"HPC_FED_RUN_DIR={shlex.quote(run_dir)}")
    print(f"HPC_FED_TRAIN_ARGS=({shlex.join(spec.train_args())})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
