"""`hpc-fed sweep CONFIG`: submit a benchmark matrix with submitit, one job per entry.

  hpc-fed sweep --list configs/benchmark/offline.yaml                 # index, done?, name
  hpc-fed sweep configs/benchmark/offline.yaml                        # SLURM when present, else local
  hpc-fed sweep configs/benchmark/offline.yaml --executor slurm --nodes 2 --tasks-per-node 4 \\
      --gpus-per-node 4 --partition gpu --timeout-min 120 --detach

Entries whose results.json exists are skipped (--force reruns them). On SLURM the entries go
in one job array (--array-parallelism caps how many run at once); with the local executor they
run as local processes in waves of --local-jobs (each with its own free port). Each job runs
every task of the entry's world: submitit starts
nodes x tasks-per-node processes and each one joins torch.distributed from submitit's job
environment (rank, world, first host). Without --detach the sweep waits, reports each entry,
and writes the collected results table (results.csv, results.md) to --report-dir.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from hpc_fed.errors import HpcFedError


@dataclass(frozen=True)
class EntryJob:
    """What one job runs: `python -m hpc_fed.train <args>` inside the job's processes."""

    name: str
    train_args: tuple[str, ...]
    results_path: str
    cwd: str
    master_port: int = 0  # 0: derived from the job id (SLURM); local jobs get a free port each


def torch_env(global_rank: int, local_rank: int, world: int, nodes: int, first_host: str,
              job_id: str, port: int = 0) -> dict[str, str]:
    """torch.distributed's environment for one task of a submitit job (what torchrun would set).

    The port is the same on every task of a job; without one it is derived from the job id,
    below Linux's ephemeral range (32768+) so an outgoing connection cannot hold it."""
    return {"RANK": str(global_rank), "LOCAL_RANK": str(local_rank), "WORLD_SIZE": str(world),
            "LOCAL_WORLD_SIZE": str(world // max(nodes, 1)),
            "MASTER_ADDR": "127.0.0.1" if nodes == 1 else first_host,
            "MASTER_PORT": str(port or 20000 + zlib.crc32(job_id.encode()) % 12000)}


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free on this host now (for local jobs started together)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def run_entry_job(job: EntryJob) -> dict | None:
    """The submitted function: runs in each task; returns results.json (on the rank 0 task)."""
    import submitit

    env = submitit.JobEnvironment()
    os.chdir(job.cwd)
    if env.num_tasks > 1:
        os.environ.update(torch_env(env.global_rank, env.local_rank, env.num_tasks, env.num_nodes,
                                    env.hostnames[0], env.job_id, job.master_port))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
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
    p = argparse.ArgumentParser(prog="hpc-fed sweep", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="benchmark matrix YAML (configs/benchmark/*.yaml)")
    p.add_argument("--list", action="store_true", help="print the entries (index, done?, name) and exit")
    p.add_argument("--only", metavar="GLOB", help="only entries whose name matches (fnmatch)")
    p.add_argument("--executor", choices=("auto", "slurm", "local"), default="auto",
                   help="auto: SLURM when srun is on PATH (submitit's test), local processes otherwise")
    p.add_argument("--nodes", type=int, default=1, help="nodes per entry")
    p.add_argument("--tasks-per-node", type=int, help="processes per node (default: the matrix's nproc)")
    p.add_argument("--gpus-per-node", type=int, help="default: none on SLURM; locally, one per task "
                   "when CUDA is available")
    p.add_argument("--cpus-per-task", type=int, default=1)
    p.add_argument("--mem-gb", type=int, help="memory per node")
    p.add_argument("--timeout-min", type=int, default=60, help="per entry (local entries too)")
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
    import submitit

    cluster = None if args.executor == "auto" else args.executor
    ex = submitit.AutoExecutor(folder=folder, cluster=cluster)
    params = dict(timeout_min=args.timeout_min, nodes=args.nodes, tasks_per_node=tasks_per_node,
                  cpus_per_task=args.cpus_per_task, name=name, stderr_to_stdout=True)
    gpus = args.gpus_per_node
    if gpus is None and ex.cluster != "slurm":  # submitit's local executor hides unrequested GPUs
        import torch

        gpus = tasks_per_node if torch.cuda.is_available() else 0
    if gpus:
        params["gpus_per_node"] = gpus
    if args.mem_gb:
        params["mem_gb"] = args.mem_gb
    if ex.cluster == "slurm":
        params.update(slurm_array_parallelism=args.array_parallelism,
                      # srun no longer inherits --cpus-per-task from the allocation (SLURM >= 22.05)
                      slurm_srun_args=["--cpus-per-task", str(args.cpus_per_task)])
        if args.partition:
            params["slurm_partition"] = args.partition
    elif args.nodes > 1:
        raise HpcFedError(f"--nodes {args.nodes} needs SLURM; the {ex.cluster} executor runs on this "
                          "machine only (use --nodes 1)")
    ex.update_parameters(**params)
    return ex


def main(argv: list[str] | None = None) -> int:
    from hpc_fed.benchmark.matrix import expand, listing, select
    from hpc_fed.launch.plan import check_layout

    args = build_parser().parse_args(argv)
    try:
        matrix = expand(args.config)
        entries = select(matrix.entries, args.only)
        if not entries:
            raise HpcFedError(f"no entry of {args.config} matches --only {args.only!r}; see --list")
        tasks = args.tasks_per_node or matrix.nproc
        if args.list:
            print(listing("sweep", matrix, entries))
            return 0
        from hpc_fed.config import load_config
        from hpc_fed.distributed.backend import visible_gpus

        local = args.executor == "local" or (args.executor == "auto" and not shutil.which("srun"))
        gpus = visible_gpus() if local else args.gpus_per_node  # SLURM nodes: as requested, if said
        for e in entries:
            check_layout(load_config(matrix.base, e.overrides), args.nodes, tasks, gpus)
        todo = [e for e in entries if args.force or not e.done]
        skipped = len(entries) - len(todo)
        folder = Path(args.folder or matrix.output_root / "submitit")
        report_dir = Path(args.report_dir or matrix.output_root / "report")
        if todo:
            ex = make_executor(args, folder, tasks, f"hpc-fed-{matrix.name}")
            if ex.cluster != "slurm" and args.detach:
                raise HpcFedError("--detach needs SLURM: local entries are started in waves of "
                                  "--local-jobs by this process")
    except HpcFedError as exc:
        print(f"hpc-fed sweep: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # submitit's own checks (e.g. no srun for --executor slurm)
        print(f"hpc-fed sweep: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    if not todo:
        print(f"sweep {matrix.name}: all {len(entries)} entries are done; nothing to submit")
        return collect(matrix, report_dir)
    cwd = str(Path.cwd())
    for e in todo:
        e.run_dir.mkdir(parents=True, exist_ok=True)
    local = ex.cluster != "slurm"
    waves = [todo[i:i + args.local_jobs] for i in range(0, len(todo), args.local_jobs)] if local else [todo]
    print(f"sweep {matrix.name}: {len(todo)} entries to {ex.cluster} ({args.nodes} node(s) x {tasks} "
          f"task(s) each{f', {args.local_jobs} at a time' if local else ''}), skipped {skipped} done")
    failed, record = [], []
    try:
        for wave in waves:
            ports = free_ports(len(wave)) if local and tasks > 1 else [0] * len(wave)
            specs = [EntryJob(e.name, ("--config", matrix.base, *e.overrides), str(e.results_path),
                              cwd, port) for e, port in zip(wave, ports)]
            try:
                jobs = ex.map_array(run_entry_job, specs)
            except Exception as exc:  # sbatch refused (no controller, bad partition, ...)
                print(f"hpc-fed sweep: error: submitting {len(wave)} entries to {ex.cluster} failed: "
                      f"{str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__}"
                      "; check the cluster (sinfo) and --partition, or run here with --executor local",
                      file=sys.stderr)
                return 2
            record += [{"index": e.index, "name": e.name, "job_id": j.job_id, "log": str(j.paths.stdout)}
                       for e, j in zip(wave, jobs)]
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "sweep.json").write_text(json.dumps(record, indent=2) + "\n")
            if args.detach:
                print(f"submitted; job ids in {folder / 'sweep.json'}; when they finish: "
                      f"hpc-fed report {matrix.output_root} --out {report_dir}")
                return 0
            failed += wait_all(wave, jobs)
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
