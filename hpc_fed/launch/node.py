"""`hpc-fed launch`: torchrun on this node, after every check that can fail before a process starts.

  hpc-fed launch --nproc 4 --config C [k=v ...]            one node (torchrun --standalone)
  hpc-fed launch --nnodes 2 --rdzv-endpoint host0:29500 --nproc 4 --config C [k=v ...]
                                                           the same command on each of 2 nodes

The config (keys, values), the layout (fed.ranks_per_client against nodes x processes) and the
GPUs (under NCCL one per rank) are checked here, in one line each when wrong; then this process
becomes `torchrun ... -m hpc_fed.train --config C k=v ...`. With several nodes the agents meet
at a c10d rendezvous on `--rdzv-endpoint` (a host all nodes reach and a free port on it); ranks
follow the order in which agents join, so rank 0 (which writes the run directory) may be on any
node: give the run directory a shared filesystem.
"""

from __future__ import annotations

import argparse
import os
import sys

from hpc_fed.errors import HpcFedError


def torchrun_command(nproc: int, train_args: list[str], nnodes: int = 1,
                     rdzv_endpoint: str | None = None, rdzv_id: str = "hpc-fed") -> list[str]:
    """The argv that starts `nproc` ranks of `python -m hpc_fed.train <train_args>` here."""
    cmd = [sys.executable, "-m", "torch.distributed.run"]
    if nnodes == 1 and rdzv_endpoint is None:
        cmd += ["--standalone"]
    else:
        cmd += ["--nnodes", str(nnodes), "--rdzv-backend", "c10d", "--rdzv-endpoint", str(rdzv_endpoint),
                "--rdzv-id", rdzv_id]
    return [*cmd, f"--nproc-per-node={nproc}", "-m", "hpc_fed.train", *train_args]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hpc-fed launch", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nproc", type=int, default=2, help="processes on this node (default 2; one per GPU)")
    p.add_argument("--nnodes", type=int, default=1, help="nodes of the run (default 1)")
    p.add_argument("--rdzv-endpoint", metavar="HOST:PORT", help="rendezvous of a multi-node run")
    p.add_argument("--rdzv-id", default="hpc-fed", help="run id shared by the nodes' agents")
    p.add_argument("--config", "-c", help="run config (configs/*.yaml)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. fed.rounds=3")
    return p


def check(args) -> None:
    """Everything that can be wrong before torchrun starts (HpcFedError naming the fix)."""
    from hpc_fed.config import load_config
    from hpc_fed.distributed.backend import visible_gpus
    from hpc_fed.launch.plan import check_layout
    from hpc_fed.runtime.rundir import preflight

    if args.nproc < 1 or args.nnodes < 1:
        raise HpcFedError(f"--nproc ({args.nproc}) and --nnodes ({args.nnodes}) must be >= 1")
    if args.nnodes > 1 and not args.rdzv_endpoint:
        raise HpcFedError(f"--nnodes {args.nnodes} needs --rdzv-endpoint HOST:PORT (a host every node "
                          "reaches, e.g. the first node, and a free port on it)")
    bad = [o for o in args.overrides if "=" not in o]
    if bad:
        raise HpcFedError(f"override {bad[0]!r} is not key=value (e.g. fed.rounds=3)")
    cfg = load_config(args.config, args.overrides)
    check_layout(cfg, args.nnodes, args.nproc, visible_gpus())
    problem = preflight(cfg, args.nnodes * args.nproc)  # a finished run, a checkpoint it cannot continue
    if problem:
        raise HpcFedError(problem)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_intermixed_args(argv)
    try:
        check(args)
    except HpcFedError as exc:
        print(f"hpc-fed: error: {exc}", file=sys.stderr)
        return 2
    train_args = (["--config", args.config] if args.config else []) + args.overrides
    cmd = torchrun_command(args.nproc, train_args, args.nnodes, args.rdzv_endpoint, args.rdzv_id)
    sys.stdout.flush()
    os.execv(cmd[0], cmd)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
