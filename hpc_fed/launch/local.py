"""Run matrix entries on this machine, each as its own subprocess, `jobs` at a time.

Each entry runs `python -m hpc_fed.cli launch --nproc N --config <base> <overrides...>`
(`train` instead of `launch` when N is 1) with stdout and stderr in `<run_dir>/log.txt`.
Entries whose results.json exists are skipped (unless `force`: the rerun gets
output.overwrite=true, so the finished run is replaced only once the new one has started); a
failed entry is reported (tail of its log) and the rest still run. An entry's run directory is
claimed as hpc_fed's (hpc_fed/runtime/owned.py) before its log is written: a folder hpc_fed did
not write fails that entry and is left as it was. The console gets one line per entry and a summary.
With jobs x nproc processes at once, each gets cores / (jobs x nproc) torch threads
(OMP_NUM_THREADS, unless the user set it: hpc_fed/launch/threads.py), so concurrent entries
do not oversubscribe the cores; on a GPU machine each running entry gets its own nproc GPUs
(CUDA_VISIBLE_DEVICES), and a jobs x nproc larger than the visible GPUs is refused before
anything starts.

This is the one local runner: `hpc-fed benchmark --local` and `hpc-fed sweep --executor local`
both use it.
"""

from __future__ import annotations

import json
import os
import queue
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from hpc_fed.benchmark.matrix import Entry, Matrix
from hpc_fed.errors import HpcFedError
from hpc_fed.launch.threads import thread_env
from hpc_fed.runtime.owned import claim
from hpc_fed.runtime.stop import EXIT_STOPPED

LOG_TAIL_LINES = 25


def command_for(entry: Entry, base: str, nproc: int) -> list[str]:
    """The argv that runs one entry (tests monkeypatch this to avoid training); a done entry
    runs again only when forced, replacing its finished run."""
    overrides = [*entry.overrides, *(["output.overwrite=true"] if entry.done else [])]
    if nproc == 1:
        return [sys.executable, "-m", "hpc_fed.cli", "train", "--config", base, *overrides]
    return [sys.executable, "-m", "hpc_fed.cli", "launch", "--nproc", str(nproc), "--config", base,
            *overrides]


def shell_line(entry: Entry, base: str, nproc: int) -> str:
    """The entry's command as one shell line, output to its log (what --dry-run prints)."""
    cmd = shlex.join(command_for(entry, base, nproc))
    return f"{cmd} > {shlex.quote(str(entry.log_path))} 2>&1"


@dataclass
class Summary:
    done: list[Entry] = field(default_factory=list)
    skipped: list[Entry] = field(default_factory=list)
    failed: list[Entry] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return 1 if self.failed else 0


def _final_metric(entry: Entry) -> str:
    """", auc 0.712" (the run's primary metric) from results.json, or "" when there is none."""
    try:
        results = json.loads(entry.results_path.read_text())
        metric = results.get("primary_metric") or "accuracy"
        return f", {metric} {float((results.get('final') or {})[metric]):.3f}"
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return ""


def _tail(entry: Entry, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = entry.log_path.read_text(errors="replace").splitlines()
    except OSError:
        return "    (no log)"
    return "\n".join("    " + line for line in text[-lines:])


def entry_env(nproc: int, jobs: int) -> dict[str, str]:
    """The environment of each entry: torch threads shared out over the concurrent processes."""
    return {**os.environ, **thread_env(nproc * jobs)}


def visible_gpu_ids() -> list[str]:
    """The GPUs this process may hand out (CUDA_VISIBLE_DEVICES when set)."""
    from hpc_fed.distributed.backend import visible_gpus

    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [g for g in listed.split(",") if g.strip()]
    return [str(i) for i in range(visible_gpus())]


def gpu_slots(nproc: int, jobs: int, gpu_ids: list[str]) -> list[dict[str, str]]:
    """Per concurrently running entry, the environment giving it its own `nproc` GPUs."""
    if not gpu_ids:
        return [{} for _ in range(jobs)]
    if nproc * jobs > len(gpu_ids):
        raise HpcFedError(f"{jobs} entries at once x {nproc} process(es) need {nproc * jobs} GPUs but "
                          f"{len(gpu_ids)} visible (one per rank under NCCL): run at most "
                          f"{len(gpu_ids) // nproc or 1} at once (--jobs / --local-jobs), fewer processes "
                          "per entry, or on the CPU with CUDA_VISIBLE_DEVICES= set empty")
    return [{"CUDA_VISIBLE_DEVICES": ",".join(gpu_ids[j * nproc:(j + 1) * nproc])} for j in range(jobs)]


def run_entry(entry: Entry, base: str, nproc: int, env: dict[str, str] | None = None
              ) -> tuple[bool, float, str]:
    """Run one entry to completion; (succeeded, seconds, why it failed)."""
    try:
        claim(entry.run_dir, "run", what="output.dir")
    except HpcFedError as exc:
        return False, 0.0, str(exc)
    before = _identity(entry.results_path)  # a forced rerun's old results.json must not pass as done
    cmd = command_for(entry, base, nproc)
    start = time.time()
    with open(entry.log_path, "w") as log:
        log.write(f"# {shlex.join(cmd)}\n")
        log.flush()
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env).returncode
    seconds = time.time() - start
    if rc == EXIT_STOPPED:
        return False, seconds, "stopped before its last round (exit 75): running it again continues it"
    if rc != 0:
        return False, seconds, f"exit code {rc}"
    if not entry.done or _identity(entry.results_path) == before:
        return False, seconds, "exited 0 but wrote no results.json"
    return True, seconds, ""


def _identity(path: Path) -> tuple[int, int] | None:
    """(inode, mtime) of a file, None when absent: results.json is written through a rename, so
    a new one always differs."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


def build_tiny_bases(matrix: Matrix, entries: list[Entry], say) -> None:
    """Build each offline tiny model the entries need, once, before they start: entries running
    side by side would each build the same one (a 1.5-minute pre-fit, twice, on shared cores)."""
    from hpc_fed.config import load_config
    from hpc_fed.distributed.collectives import LocalComm
    from hpc_fed.tiny.build import ensure_model
    from hpc_fed.model.config import TINY

    seen = set()
    for entry in entries:
        try:
            model = load_config(str(matrix.base), entry.overrides).model
        except HpcFedError:
            continue  # the entry's own run reports it, in its log
        if model.path != TINY or model.tiny.dir in seen:
            continue
        seen.add(model.tiny.dir)
        if not Path(model.tiny.dir).exists():
            say(f"building the tiny model in {model.tiny.dir} once for all entries")
        try:
            ensure_model(model, LocalComm())
        except Exception as exc:  # the entries' own runs build it again and report in their logs
            say(f"building the tiny model in {model.tiny.dir} failed ({exc}); each entry will try")


def run_local(matrix: Matrix, entries: list[Entry], nproc: int | None = None, force: bool = False,
              out: TextIO | None = None, jobs: int | None = None, label: str = "benchmark") -> Summary:
    """Run `entries` here, `jobs` at a time; print progress and a summary to `out` (lines start
    with `label`, the command's name)."""
    out = out or sys.stdout
    nproc, jobs = nproc or matrix.nproc, jobs or matrix.jobs
    env = entry_env(nproc, jobs)
    free = queue.Queue()
    for slot in gpu_slots(nproc, jobs, visible_gpu_ids()):  # HpcFedError before anything runs
        free.put(slot)

    def run_in_slot(entry: Entry) -> tuple[bool, float, str]:
        slot = free.get()
        try:
            return run_entry(entry, matrix.base, nproc, {**env, **slot})
        finally:
            free.put(slot)
    summary, start, total = Summary(), time.time(), len(entries)

    def say(text: str = "", end: str = "\n") -> None:
        print(text, end=end, file=out, flush=True)

    def finish(entry: Entry, result: tuple[bool, float, str]) -> None:
        ok, seconds, why = result
        if ok:
            summary.done.append(entry)
            say(f"done {seconds:.0f} s{_final_metric(entry)}")
        else:
            summary.failed.append(entry)
            say(f"FAILED after {seconds:.0f} s ({why}); last lines of {entry.log_path}:")
            say(_tail(entry))

    say(f"{label} {matrix.name}: {total} entries, {nproc} process(es) each, {jobs} at a time, "
        f"base {matrix.base}, output under {matrix.output_root}")
    todo = []
    for k, entry in enumerate(entries, 1):
        if entry.done and not force:
            summary.skipped.append(entry)
            say(f"[{k}/{total}] {entry.name} ... skipped (done: {entry.results_path})")
        else:
            todo.append((k, entry))
    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        build_tiny_bases(matrix, [e for _, e in todo], say)
        if jobs == 1:  # the entry's name first, its result when it ends
            for k, entry in todo:
                say(f"[{k}/{total}] {entry.name} ... ", end="")
                finish(entry, run_in_slot(entry))
        else:  # lines in the order entries end
            running = {pool.submit(run_in_slot, entry): (k, entry) for k, entry in todo}
            for future in as_completed(running):
                k, entry = running[future]
                say(f"[{k}/{total}] {entry.name} ... ", end="")
                finish(entry, future.result())
    except KeyboardInterrupt:
        summary.interrupted = True
        say("\ninterrupted")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    summary.seconds = time.time() - start
    say(f"{label} {matrix.name}: {len(summary.done)} done, {len(summary.skipped)} skipped "
        f"(already done), {len(summary.failed)} failed"
        + (f", {total - len(summary.done) - len(summary.skipped) - len(summary.failed)} not run"
           if summary.interrupted else "")
        + f", {summary.seconds:.0f} s in total")
    for entry in summary.failed:
        say(f"  failed: [{entry.index}] {entry.name}: log {entry.log_path}")
    return summary
