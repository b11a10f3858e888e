"""`hpc-fed bench`: measure where a round's time goes for any config, on this node.

  hpc-fed bench --config configs/quickstart.yaml --nproc 2 --rounds 6 --repeats 3 --compare-groups

Each measured run is a federated run of --rounds rounds under torchrun (the same launcher as
`hpc-fed launch`) whose rank 0 writes bench.json (hpc_fed/bench/stats.py: the phases). With
--compare-groups the same work also runs with one client group (--nproc = fed.ranks_per_client)
and the summary reports `groups_speedup`; --compare-sequential also runs it as a FedMLLM-style
loop (sequential.py) and reports `speedup_vs_sequential`. Repetitions are interleaved (groups, one group,
groups, ...), so a slow minute of a shared machine hits both; the summary gives the median and
the spread. Round 0 (warm-up) is left out of every steady-state figure and reported apart.
Every variant gets the same cores: each of its processes runs cores / processes torch threads
(hpc_fed/launch/threads.py), set for that variant, or the user's OMP_NUM_THREADS for all alike;
each bench.json and the summary record the threads and cores.

Output: OUT/<variant>-<repeat>/ (normal run directories with their own bench.json) and
OUT/bench.json, the summary; OUT is an `output.dir=` override or runs/bench-<time>. OUT must be
new, empty, or an earlier bench folder (output.kind=bench; hpc_fed/runtime/owned.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

from hpc_fed.bench.stats import ratio, spread
from hpc_fed.errors import UsageError, command, print_error
from hpc_fed.launch.threads import thread_env, thread_source

REPORTED = ("round_efficiency", "step_efficiency", "aggregation_over_floor", "samples_per_second",
            "tokens_per_second", "idle_seconds_per_round", "step_seconds", "plain_step_seconds",
            "first_round_seconds")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hpc-fed bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", "-c", help="run config (configs/*.yaml)")
    p.add_argument("--nproc", type=int, default=2, help="processes on this node (default 2)")
    p.add_argument("--rounds", type=int, default=5, help="rounds per measured run (default 5; "
                   "round 0 is warm-up)")
    p.add_argument("--repeats", type=int, default=1, help="measured runs per variant (default 1)")
    p.add_argument("--compare-groups", action="store_true",
                   help="also run the same work with one client group and report groups_speedup")
    p.add_argument("--compare-sequential", action="store_true",
                   help="also run the work as a FedMLLM-style loop (one process, a new HF Trainer per "
                        "client per round; hpc_fed/bench/sequential.py) and report the speedups")
    p.add_argument("--no-plain", action="store_true",
                   help="skip the plain peft + torch reference step (step_efficiency)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.zero_stage=3")
    return p


def summarize_variant(benches: list[dict]) -> dict:
    """Median and spread over a variant's repetitions."""
    out = {"round_seconds": spread([b["round_seconds"]["median"] for b in benches]),
           "train_round_seconds": spread([b["train_round_seconds"]["median"] for b in benches]),
           "runs": len(benches)}
    for key in REPORTED:
        vals = [b[key] for b in benches if b.get(key) is not None]
        if vals:
            out[key] = spread(vals)
    out["phase_seconds_per_round"] = {
        p: round(statistics.median(b["phase_seconds_per_round"][p] for b in benches), 4)
        for p in benches[0]["phase_seconds_per_round"]}
    out["memory"] = benches[-1]["memory"]
    out["one_time_seconds"] = benches[-1]["one_time_seconds"]
    out["setup"] = benches[-1]["setup"]
    out["torch_threads"] = sorted({b["setup"]["torch_threads"] for b in benches})
    out["cores"] = sorted({b["setup"]["cores"] for b in benches})
    return out


def threads_of(value: list[int]) -> str:
    return "/".join(map(str, value))


def table(summary: dict) -> str:
    lines = ["variant      round s without eval (median, min-max)  procs x threads  round_eff  step_eff  "
             "agg/floor  samples/s"]
    for name, v in summary["variants"].items():
        r = v["train_round_seconds"]
        eff, step, agg, sps = (v.get(k, {}).get("median") for k in (
            "round_efficiency", "step_efficiency", "aggregation_over_floor", "samples_per_second"))
        procs = f"{v['setup']['world_size']} x {threads_of(v['torch_threads'])}"
        lines.append(f"{name:<12} {r['median']:>7.3f} ({r['min']:.3f}-{r['max']:.3f})      {procs:>15}  "
                     f"{eff!s:>9}  {step!s:>8}  {agg!s:>9}  {sps!s:>9}")
    if summary.get("sequential"):
        seq = summary["sequential"]
        r, procs = seq["round_seconds"], f"1 x {threads_of(seq['torch_threads'])}"
        lines.append(f"{'sequential':<12} {r['median']:>7.3f} ({r['min']:.3f}-{r['max']:.3f})      "
                     f"{procs:>15}  (FedMLLM-style Trainer loop)")
        lines.append("speedup_vs_sequential " + ", ".join(
            f"{k} {v}" for k, v in summary["speedup_vs_sequential"].items()))
    if summary.get("groups_speedup") is not None:
        lines.append(f"groups_speedup {summary['groups_speedup']} (one group's round time / "
                     f"{summary['variants']['groups']['setup']['client_groups']} groups')")
    t = summary["threads"]
    lines.append(f"threads: {t['source']}; cores {threads_of(t['cores'])}")
    return "\n".join(lines)


def summarize(found: dict[str, list[dict]], sequential: list[dict], runs: dict[str, list[str]]
              ) -> dict:
    """The summary bench.json: each variant's medians, the threads and cores every run had, the
    speedups (of training rounds: evaluation is the same work whatever runs the rounds)."""
    variants = {name: summarize_variant(b) for name, b in found.items()}
    cores = {c for v in variants.values() for c in v["cores"]} | {s["cores"] for s in sequential}
    summary = {"variants": variants, "runs": runs,
               "threads": {"source": thread_source(), "cores": sorted(cores)}}
    rounds = {name: v["train_round_seconds"]["median"] for name, v in variants.items()}
    if "one_group" in variants:
        summary["groups_speedup"] = ratio(rounds["one_group"], rounds["groups"])
    if sequential:
        seq = spread([s["round_seconds"]["median"] for s in sequential])
        summary["sequential"] = {"round_seconds": seq, "share_in_trainer_train": spread(
            [s["share_in_trainer_train"] for s in sequential]),
            "torch_threads": sorted({s["torch_threads"] for s in sequential}),
            "cores": sorted({s["cores"] for s in sequential})}
        summary["speedup_vs_sequential"] = {name: ratio(seq["median"], r) for name, r in rounds.items()}
    return summary


@command("hpc-fed bench")
def main(argv: list[str] | None = None) -> int:
    from hpc_fed.launch.node import check, launch
    from hpc_fed.runtime.owned import claim
    from hpc_fed.runs.rundir import split_output_dir

    p = build_parser()
    args = p.parse_intermixed_args(argv)
    args.nnodes, args.rdzv_endpoint, args.rdzv_id, args.max_restarts = 1, None, "hpc-fed-bench", 0
    if args.rounds < 1 or args.repeats < 1:
        raise UsageError(f"--rounds ({args.rounds}) and --repeats ({args.repeats}) must be >= 1")
    root, base = split_output_dir(args.overrides, "bench")
    base = [*base, "output.kind=bench"]  # its folders are never a training run's (owned.py)
    cfg = check(argparse.Namespace(**{**vars(args), "overrides": [*base, f"output.dir={root}/groups-0"]}),
                "hpc-fed bench")
    claim(root, "bench", what="output.dir")
    group = cfg.fed.ranks_per_client
    variants = [("groups", args.nproc)]
    if args.compare_groups:
        if args.nproc <= group:
            raise UsageError(f"--compare-groups needs more than one client group: --nproc "
                             f"({args.nproc}) must exceed fed.ranks_per_client ({group})")
        variants.append(("one_group", group))
    found: dict[str, list[dict]] = {name: [] for name, _ in variants}
    sequential: list[dict] = []
    for k in range(args.repeats):
        if args.compare_sequential:
            out = root / f"sequential-{k}.json"
            print(f"hpc-fed bench: sequential Trainer loop (one process), repeat {k + 1} of "
                  f"{args.repeats}: {out}", flush=True)
            cmd = [sys.executable, "-m", "hpc_fed.bench.sequential", "--rounds", str(args.rounds),
                   "--out", str(out), *(["--config", args.config] if args.config else []), *base]
            rc = subprocess.run(cmd, env={**os.environ, **thread_env(1)}).returncode
            if rc != 0 or not out.is_file():
                print_error("hpc-fed bench", f"the sequential loop failed (exit {rc}); its output above "
                            "says why")
                return rc or 1
            sequential.append(json.loads(out.read_text()))
        for name, nproc in variants:
            run_dir = root / f"{name}-{k}"
            print(f"hpc-fed bench: {name} (--nproc {nproc}), repeat {k + 1} of {args.repeats}: {run_dir}",
                  flush=True)
            run_args = argparse.Namespace(**{**vars(args), "nproc": nproc})
            worker_args = (["--config", args.config] if args.config else []) + \
                (["--no-plain"] if args.no_plain else []) + \
                [*base, f"fed.rounds={args.rounds}", f"output.dir={run_dir}"]
            rc = launch(run_args, run_dir, worker_args, module="hpc_fed.bench.worker", prog="hpc-fed bench")
            bench = run_dir / "bench.json"
            if rc != 0 or not bench.is_file():
                print_error("hpc-fed bench", f"the measured run in {run_dir} failed (exit {rc}); its "
                            "output above says why")
                return rc or 1
            found[name].append(json.loads(bench.read_text()))
    summary = summarize(found, sequential, {name: [str(root / f"{name}-{k}") for k in range(args.repeats)]
                                            for name in found})
    (root / "bench.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(table(summary))
    print(f"hpc-fed bench: summary in {root / 'bench.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
