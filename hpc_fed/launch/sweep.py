"""`hpc-fed sweep --config CONFIG`: run a benchmark matrix as one submitit job array on SLURM
(or here).

  hpc-fed sweep --list --config configs/benchmark/offline.yaml    # index, done?, name
  hpc-fed sweep --config configs/benchmark/offline.yaml           # SLURM when present, else local
  hpc-fed sweep --config configs/benchmark/offline.yaml --executor slurm --nodes 2 --tasks-per-node 4 \\
      --gpus-per-node 4 --partition gpu --timeout-min 120 --detach

Entries whose results.json exists are skipped (--force reruns them). On SLURM the entries go
in one job array (--array-parallelism caps how many run at once); each job runs every task of
the entry's world: submitit starts nodes x tasks-per-node processes and each one joins
torch.distributed from submitit's job environment (rank, world, first host). With the local
executor the entries run through the one local runner (hpc_fed/launch/local.py, the same as
`hpc-fed benchmark --local`), --local-jobs at a time. Without --detach the sweep waits, reports
each entry, and writes the collected results table (results.csv, results.md) to --report-dir.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from hpc_fed.errors import HpcFedError, UsageError, command


@dataclass(frozen=True)
class EntryJob:
    """What one job runs: `python -m hpc_fed.train <args>` inside the job's processes."""

    name: str
    train_args: tuple[str, ...]
    results_path: str
    cwd: str


def torch_env(global_rank: int, local_rank: int, world: int, nodes: int, first_host: str,
              job_id: str) -> dict[str, str]:
    """torch.distributed's environment for one task of a submitit job (what torchrun would set).

    The port, the same on every task of a job, is derived from the job id, below Linux's
    ephemeral range (32768+) so an outgoing connection cannot hold it."""
    return {"RANK": str(global_rank), "LOCAL_RANK": str(local_rank), "WORLD_SIZE": str(world),
            "LOCAL_WORLD_SIZE": str(world // max(nodes, 1)),
            "MASTER_ADDR": "127.0.0.1" if nodes == 1 else first_host,
            "MASTER_PORT": str(20000 + zlib.crc32(job_id.encode()) % 12000)}


def run_entry_job(job: EntryJob) -> dict | None:
    """The submitted function: runs in each task; returns results.json (on the rank 0 task)."""
    import submitit

    from hpc_fed.launch.threads import thread_env

    env = submitit.JobEnvironment()
    os.chdir(job.cwd)
    if env.num_tasks > 1:
        os.environ.update(torch_env(env.global_rank, env.local_rank, env.num_tasks, env.num_nodes,
                                    env.hostnames[0], env.job_id))
    # this task is a rank itself: its threads are set before torch starts (threads.py's rule;
    # SLURM's CPUs per task are its share when the job asked for them)
    ranks = max(1, env.num_tasks // max(1, env.num_nodes))
    per_task = os.environ.get("SLURM_CPUS_PER_TASK", "")
    os.environ.update(thread_env(ranks, cores=int(per_task) * ranks if per_task.isdigit() else None))
    from hpc_fed.train import main as train_main

    rc = train_main(list(job.train_args))
    if rc != 0:
        raise RuntimeError(f"{job.name}: hpc_fed.train exited with {rc} (the error is above in "
                           "this job's log)")
    path = Path(job.results_path)
    if env.global_rank != 0:
        return None
    if not path.is_file():
        stopped = path.with_name("stopped.json")
        why = "it was stopped early (stopped.json)" if stopped.is_file() else "no results.json"
        raise RuntimeError(f"{job.name}: finished but is not done: {why}; submit it again")
    return json.loads(path.read_text())


def build_parser() -> argparse.ArgumentParser:
    from hpc_fed.config import add_config_argument

    p = argparse.ArgumentParser(prog="hpc-fed sweep", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_argument(p, "benchmark matrix YAML (configs/benchmark/*.yaml)")
    p.add_argument("--list", action="store_true", help="print the entries (index, done?, name) and exit")
    p.add_argument("--only", metavar="GLOB", help="only entries whose name matches (fnmatch)")
    p.add_argument("--executor", choices=("auto", "slurm", "local"), default="auto",
                   help="auto: SLURM when srun is on PATH (submitit's test), local processes otherwise")
    p.add_argument("--nodes", type=int, default=1, help="nodes per entry")
    p.add_argument("--tasks-per-node", type=int, help="processes per node (default: the matrix's nproc)")
    p.add_argument("--gpus-per-node", type=int, help="SLURM: GPUs per node (default none; one per task "
                   "for nccl); locally each running entry gets its own tasks-per-node visible GPUs")
    p.add_argument("--cpus-per-task", type=int, default=1)
    p.add_argument("--mem-gb", type=int, help="memory per node")
    p.add_argument("--timeout-min", type=int, default=60, help="per entry (SLURM)")
    p.add_argument("--partition", help="SLURM partition")
    p.add_argument("--array-parallelism", type=int, default=64, help="SLURM array tasks at once")
    p.add_argument("--local-jobs", type=int, default=2, help="local executor: entries at once")
    p.add_argument("--folder", help="submitit logs and pickles (default <output_root>/submitit)")
    p.add_argument("--report-dir", help="collected table (default <output_root>/report)")
    p.add_argument("--detach", action="store_true", help="submit and return; collect later with "
                   "`hpc-fed report <output_root> --out DIR`")
    p.add_argument("--force", action="store_true", help="rerun entries that are already done")
    return p


def make_executor(args, folder: Path, tasks_per_node: int, name: str):
    """submitit's SLURM executor for the entries' job array."""
    import submitit

    ex = submitit.AutoExecutor(folder=folder, cluster="slurm")
    params = dict(timeout_min=args.timeout_min, nodes=args.nodes, tasks_per_node=tasks_per_node,
                  cpus_per_task=args.cpus_per_task, name=name, stderr_to_stdout=True,
                  slurm_array_parallelism=args.array_parallelism,
                  # srun no longer inherits --cpus-per-task from the allocation (SLURM >= 22.05)
                  slurm_srun_args=["--cpus-per-task", str(args.cpus_per_task)])
    if args.gpus_per_node:
        params["gpus_per_node"] = args.gpus_per_node
    if args.mem_gb:
        params["mem_gb"] = args.mem_gb
    if args.partition:
        params["slurm_partition"] = args.partition
    ex.update_parameters(**params)
    return ex


def run_here(args, matrix, entries, tasks: int, report_dir: Path) -> int:
    """--executor local: the one local runner, then the collected table."""
    from hpc_fed.launch.local import run_local

    if args.nodes > 1 or args.detach:
        raise UsageError("the local executor runs on this machine and waits: use --nodes 1 and no "
                         "--detach (or --executor slurm)")
    summary = run_local(matrix, entries, nproc=tasks, force=args.force, jobs=args.local_jobs, label="sweep")
    rc = collect(matrix, report_dir)
    return summary.exit_code or rc


@command("hpc-fed sweep")
def main(argv: list[str] | None = None) -> int:
    from hpc_fed.benchmark.matrix import expand, listing, select
    from hpc_fed.config import config_argument, load_config
    from hpc_fed.distributed.backend import visible_gpus
    from hpc_fed.launch.plan import check_layout

    parser = build_parser()
    args = parser.parse_args(argv)
    args.config = config_argument(args, parser)
    matrix = expand(args.config)
    entries = select(matrix.entries, args.only)
    if not entries:
        raise UsageError(f"no entry of {args.config} matches --only {args.only!r}; see --list")
    tasks = args.tasks_per_node or matrix.nproc
    if args.list:
        print(listing("sweep", matrix, entries))
        return 0
    local = args.executor == "local" or (args.executor == "auto" and not shutil.which("srun"))
    gpus = visible_gpus() if local else args.gpus_per_node  # SLURM nodes: as requested, if said
    for e in entries:
        check_layout(load_config(matrix.base, e.overrides), args.nodes, tasks, gpus)
    report_dir = Path(args.report_dir or matrix.output_root / "report")
    if local:
        return run_here(args, matrix, entries, tasks, report_dir)
    todo = [e for e in entries if args.force or not e.done]
    folder = Path(args.folder or matrix.output_root / "submitit")
    try:
        ex = make_executor(args, folder, tasks, f"hpc-fed-{matrix.name}") if todo else None
    except HpcFedError:
        raise
    except Exception as exc:  # submitit's own checks (e.g. no srun for --executor slurm)
        raise UsageError(f"{type(exc).__name__}: {exc}") from exc
    if not todo:
        print(f"sweep {matrix.name}: all {len(entries)} entries are done; nothing to submit")
        return collect(matrix, report_dir)
    return submit(args, ex, matrix, entries, todo, folder, report_dir, tasks)


def submit(args, ex, matrix, entries, todo, folder: Path, report_dir: Path, tasks: int) -> int:
    """One SLURM job array of the entries not done; wait for it unless --detach."""
    from hpc_fed.runtime.owned import json_with, replace_problem, write_new_or_owned

    ours = json_with("index", "name", "job_id")  # an earlier sweep's job list
    problem = replace_problem(folder / "sweep.json", ours, what="the job list")
    if problem:
        raise UsageError(f"{problem} (or pass another --folder)")
    cwd = str(Path.cwd())
    for e in todo:
        e.run_dir.mkdir(parents=True, exist_ok=True)
    print(f"sweep {matrix.name}: {len(todo)} entries to slurm ({args.nodes} node(s) x {tasks} task(s) "
          f"each), skipped {len(entries) - len(todo)} done")
    # --force reruns done entries: their finished run is replaced once the new one starts
    specs = [EntryJob(e.name, ("--config", matrix.base, *e.overrides,
                               *(["output.overwrite=true"] if e.done else [])), str(e.results_path), cwd)
             for e in todo]
    try:
        jobs = ex.map_array(run_entry_job, specs)
    except Exception as exc:  # sbatch refused (no controller, bad partition, ...)
        raise UsageError(f"submitting {len(todo)} entries to slurm failed: "
                         f"{str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__}"
                         "; check the cluster (sinfo) and --partition, or run here with --executor local"
                         ) from exc
    record = [{"index": e.index, "name": e.name, "job_id": j.job_id, "log": str(j.paths.stdout)}
              for e, j in zip(todo, jobs)]
    try:
        write_new_or_owned(folder / "sweep.json", json.dumps(record, indent=2) + "\n", ours,
                           what="the job list")
    except HpcFedError as exc:
        print(f"hpc-fed sweep: warning: job ids not recorded: {exc}; they are "
              + ", ".join(str(r["job_id"]) for r in record), file=sys.stderr)
    if args.detach:
        print(f"submitted; job ids in {folder / 'sweep.json'}; when they finish: "
              f"hpc-fed report {matrix.output_root} --out {report_dir}")
        return 0
    try:
        failed = wait_all(todo, jobs)
    except KeyboardInterrupt:
        print(f"\ninterrupted: SLURM jobs keep running (job ids in {folder / 'sweep.json'}; scancel "
              f"to stop them); collect later with hpc-fed report {matrix.output_root} --out {report_dir}",
              file=sys.stderr)
        return 130
    print(f"sweep {matrix.name}: {len(todo) - len(failed)} done, {len(failed)} failed")
    rc = collect(matrix, report_dir)
    return 1 if failed else rc


TERMINAL = ("CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL",
            "DEADLINE")


def slurm_state(job_id: str) -> str:
    """The job's state from `scontrol` ("" when unknown): without accounting (no sacct), submitit
    cannot tell a job that died without writing its result from one still running."""
    try:
        out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    for field in out.split():
        if field.startswith("JobState="):
            return field.split("=", 1)[1]
    return ""


def wait_for(job, poll_s: float = 2.0, grace_s: float = 30.0):
    """job.results()[0] (rank 0's), or an exception; also ends when SLURM says the job ended
    (or no longer knows it) and no result came within `grace_s`."""
    ended_at = None
    while not job.done():
        if job.__class__.__name__ == "SlurmJob":
            state = slurm_state(str(job.job_id))
            if state in TERMINAL or state in ("", "COMPLETED"):
                ended_at = ended_at or time.time()
                if time.time() - ended_at > grace_s:
                    raise RuntimeError(f"SLURM job {job.job_id} ended ({state or 'purged'}) without "
                                       "writing a result")
        time.sleep(poll_s)
    return job.results()[0]


def wait_all(entries, jobs) -> list:
    """Wait for each job, print its line; the entries that failed."""
    failed = []
    for e, j in zip(entries, jobs):
        try:
            results = wait_for(j)
            metric = (results or {}).get("primary_metric") or "accuracy"
            value = ((results or {}).get("final") or {}).get(metric)
            shown = f", {metric} {value:.3f}" if isinstance(value, (int, float)) else ""
            print(f"[{e.index}] {e.name}: done (job {j.job_id}{shown})", flush=True)
        except Exception as exc:  # submitit raises FailedJobError / UncompletedJobError
            failed.append(e)
            last = str(exc).strip().splitlines()[-3:]
            print(f"[{e.index}] {e.name}: FAILED (job {j.job_id}); log {j.paths.stdout}\n    "
                  + "\n    ".join(last), flush=True)
    return failed


def collect(matrix, report_dir: Path) -> int:
    """The results table of every finished entry of the matrix (hpc-fed report)."""
    from hpc_fed.report.cli import main as report_main

    return report_main([str(matrix.output_root), "--out", str(report_dir), "--no-plots"])


if __name__ == "__main__":
    sys.exit(main())
