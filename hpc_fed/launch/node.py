"""`hpc-fed launch`: torchrun on this node, after every check that can fail before a process starts.

  hpc-fed launch --nproc 4 --config C [k=v ...]            one node (torchrun --standalone)
  hpc-fed launch --nnodes 2 --rdzv-endpoint host0:29500 --nproc 4 --config C [k=v ...]
                                                           the same command on each of 2 nodes

The config (keys, values), the layout (fed.ranks_per_client against nodes x processes) and the
GPUs (under NCCL one per rank) are checked here, in one line each when wrong; then this process
becomes `torchrun ... -m hpc_fed.train --config C k=v ...`. With several nodes the agents meet
at a c10d rendezvous on `--rdzv-endpoint` (a host all nodes reach and a free port on it); ranks
follow the order in which agents join, so rank 0 (which writes the run directory) may be on any
node: give the run directory a shared filesystem. Each rank gets this node's usable cores /
--nproc torch threads, or the user's OMP_NUM_THREADS (hpc_fed/launch/threads.py).

This process is the torchrun agent (torch.distributed.run, in process), so it owns the workers:
  - SIGUSR2 (the time limit is near) creates the stop file ($HPC_FED_STOP_FILE): every rank
    stops after the round in flight;
  - SIGTERM (preemption, scancel, kill) goes on to the workers: they finish the round within
    checkpoint.stop_grace_s or abandon it;
  - either way the run directory holds a checkpoint and stopped.json, and this exits 75: run the
    same command again to continue. A worker that dies (kill -9, out of memory) is restarted from
    the last checkpoint while `--max-restarts` allows.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from hpc_fed.errors import UsageError, command, print_error
from hpc_fed.runtime.stop import EXIT_STOPPED, STOP_FILE_ENV


def torchrun_args(nproc: int, train_args: list[str], nnodes: int = 1,
                  rdzv_endpoint: str | None = None, rdzv_id: str = "hpc-fed",
                  max_restarts: int = 0, module: str = "hpc_fed.train") -> list[str]:
    """torchrun's arguments for `nproc` ranks of `python -m <module> <train_args>` here
    (hpc_fed.train; hpc_fed.bench.worker for `hpc-fed bench`)."""
    if nnodes == 1 and rdzv_endpoint is None:
        cmd = ["--standalone"]
    else:
        cmd = ["--nnodes", str(nnodes), "--rdzv-backend", "c10d", "--rdzv-endpoint", str(rdzv_endpoint),
               "--rdzv-id", rdzv_id]
    return [*cmd, f"--nproc-per-node={nproc}", f"--max-restarts={max_restarts}", "-m", module,
            *train_args]


def torchrun_command(nproc: int, train_args: list[str], nnodes: int = 1,
                     rdzv_endpoint: str | None = None, rdzv_id: str = "hpc-fed",
                     max_restarts: int = 0) -> list[str]:
    """The same as a command line (`python -m torch.distributed.run ...`)."""
    return [sys.executable, "-m", "torch.distributed.run",
            *torchrun_args(nproc, train_args, nnodes, rdzv_endpoint, rdzv_id, max_restarts)]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hpc-fed launch", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nproc", type=int, default=2, help="processes on this node (default 2; one per GPU)")
    p.add_argument("--nnodes", type=int, default=1, help="nodes of the run (default 1)")
    p.add_argument("--rdzv-endpoint", metavar="HOST:PORT", help="rendezvous of a multi-node run")
    p.add_argument("--rdzv-id", default="hpc-fed", help="run id shared by the nodes' agents")
    p.add_argument("--max-restarts", type=int, default=0,
                   help="restart the workers from the last checkpoint this many times when one dies")
    p.add_argument("--config", "-c", help="run config (configs/*.yaml)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. fed.rounds=3")
    return p


def check(args, command: str = "hpc-fed launch"):
    """Everything that can be wrong before torchrun starts (UsageError naming the fix)."""
    from hpc_fed.config import load_config, require_config
    from hpc_fed.distributed.backend import visible_gpus
    from hpc_fed.launch.plan import check_inputs, check_layout
    from hpc_fed.launch.threads import threads_per_rank

    if args.nproc < 1 or args.nnodes < 1:
        raise UsageError(f"--nproc ({args.nproc}) and --nnodes ({args.nnodes}) must be >= 1")
    if args.max_restarts < 0:
        raise UsageError(f"--max-restarts ({args.max_restarts}) must be >= 0")
    if args.nnodes > 1 and not args.rdzv_endpoint:
        raise UsageError(f"--nnodes {args.nnodes} needs --rdzv-endpoint HOST:PORT (a host every node "
                          "reaches, e.g. the first node, and a free port on it)")
    bad = [o for o in args.overrides if "=" not in o]
    if bad:
        raise UsageError(f"override {bad[0]!r} is not key=value (e.g. fed.rounds=3)")
    threads_per_rank(args.nproc)  # a malformed OMP_NUM_THREADS, in one line
    cfg = load_config(require_config(args.config, command), args.overrides)
    check_layout(cfg, args.nnodes, args.nproc, visible_gpus())
    problem = check_inputs(cfg, args.nnodes * args.nproc)  # model, data, then output.dir
    if problem:
        raise UsageError(problem)
    return cfg


def outcome(run_dir: Path, since: float, signalled: str | None, failed: str | None,
            prog: str = "hpc-fed launch") -> int:
    """The launcher's exit code and last line, from how the agent ended and what the run
    directory says: 0 done; 75 stopped on request (run the same command again); 1 a failure
    (a rank died or stopped answering; the checkpoint still continues it)."""
    from hpc_fed.runtime import checkpoint

    stopped, info = run_dir / "stopped.json", None
    if stopped.is_file() and stopped.stat().st_mtime >= since and not (run_dir / "results.json").is_file():
        info = json.loads(stopped.read_text())
    if failed and not signalled:
        what = info["reason"] if info and info.get("failure") else failed
        newest = checkpoint.latest(run_dir / "checkpoints")
        resumes = (info or {}).get("resumes") or (f"from checkpoint {newest.name}" if newest else None)
        later = f"; {run_dir} continues {resumes} when the same command runs again (or --max-restarts)" \
            if resumes else ""
        print_error(prog, f"{what}{later}")
        return 1
    if info:
        how = "abandoned the round in flight" if info.get("abandoned") else "stopped cleanly"
        print(f"{prog}: {how} after round {info.get('stopped_after_round')} of {info.get('rounds')} "
              f"({info.get('reason')}); {run_dir} keeps its checkpoint: run the same command again to "
              f"continue (exit {EXIT_STOPPED})", file=sys.stderr)
        return EXIT_STOPPED
    if signalled:
        print(f"{prog}: {signalled} before the first checkpoint; run the same command again to "
              f"start over (exit {EXIT_STOPPED})", file=sys.stderr)
        return EXIT_STOPPED
    return 0


def _failure_line(exc) -> str:
    """One line per failed rank of a ChildFailedError (the ranks' own stderr has the details)."""
    parts = []
    for rank, f in sorted(exc.failures.items()):
        how = f"signal {f.signal_name()}" if f.exitcode < 0 else f"exit code {f.exitcode}"
        parts.append(f"rank {rank} ({how})")
    return "workers failed: " + ", ".join(parts) + " (their output above says why)"


def launch(args, run_dir: Path, train_args: list[str], module: str = "hpc_fed.train",
           prog: str = "hpc-fed launch") -> int:
    """Run torchrun's agent in this process and turn how it ended into an exit code."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args as parse_torchrun, run as torchrun

    from hpc_fed.launch.threads import scoped_environ, thread_env

    own_stop_file = not os.environ.get(STOP_FILE_ENV)
    stop_file = Path(os.environ.get(STOP_FILE_ENV) or
                     Path(tempfile.gettempdir()) / f"hpc-fed-stop-{os.getpid()}")
    # the agent hands its os.environ to the workers: the stop file (SIGUSR2 creates it) and the
    # threads of this launch's ranks, held only while it runs (threads.py)
    child_env = {STOP_FILE_ENV: str(stop_file), **thread_env(args.nproc)}

    def on_usr2(signum, frame):
        print("hpc-fed: SIGUSR2: every rank stops after the round in flight", file=sys.stderr)
        stop_file.touch()

    previous = signal.signal(signal.SIGUSR2, on_usr2)
    since, signalled, failed = time.time() - 1, None, None
    sys.stdout.flush()
    try:
        with scoped_environ(child_env):
            torchrun(parse_torchrun(torchrun_args(args.nproc, train_args, args.nnodes,
                                                  args.rdzv_endpoint, args.rdzv_id, args.max_restarts,
                                                  module)))
    except SignalException as exc:
        signalled = f"stopped by {exc.sigval.name}"
    except ChildFailedError as exc:
        failed = _failure_line(exc)
    finally:
        signal.signal(signal.SIGUSR2, previous)
        if own_stop_file:
            stop_file.unlink(missing_ok=True)
    return outcome(run_dir, since, signalled, failed, prog)


@command("hpc-fed launch")
def main(argv: list[str] | None = None) -> int:
    from hpc_fed.runs.rundir import run_dir_name

    args = build_parser().parse_intermixed_args(argv)
    cfg = check(args)
    run_dir = Path(cfg.output.dir or run_dir_name(cfg))
    overrides = list(args.overrides)
    if not cfg.output.dir:  # named here, so this process knows where the run's outcome lands
        overrides.append(f"output.dir={run_dir}")
    train_args = (["--config", args.config] if args.config else []) + overrides
    return launch(args, run_dir, train_args)


if __name__ == "__main__":
    sys.exit(main())
