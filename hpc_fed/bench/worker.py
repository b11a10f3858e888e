"""One measured run of `hpc-fed bench`, on every rank (torchrun, like hpc_fed.train):

    torchrun --nproc-per-node N -m hpc_fed.bench.worker --config C [k=v ...]

It runs fed.rounds rounds of the config as a normal federated run (the run directory gets
config.yaml and metrics.jsonl as usual) with two additions that only the benchmark pays: a
barrier before each aggregation, so waiting for other groups is told apart from the collective,
and, after the rounds, the reference measurements (one all_reduce of the round's payload bytes;
a plain peft + torch step). Rank 0 writes bench.json into the run directory (stats.py says what
each figure is).
"""

from __future__ import annotations

import time

_STARTED = time.perf_counter()  # before the heavy imports: they are a one-time cost too

import argparse  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import threading  # noqa: E402

import torch  # noqa: E402

from hpc_fed.bench.stats import (PHASES, cpu_split, ratio, split_round, status_bytes,  # noqa: E402
                                 summarize, thread_cpu_seconds)
from hpc_fed.errors import UsageError, command  # noqa: E402
from hpc_fed.launch.threads import usable_cpus  # noqa: E402
from hpc_fed.runs.federated import FederatedRun  # noqa: E402
from hpc_fed.runtime.monitor import THREAD_NAME as MONITOR_THREAD  # noqa: E402


def peak_memory(device: torch.device) -> dict[str, int]:
    """Peak host memory of this process (VmHWM) and, on a GPU, torch's peak allocation."""
    out = {}
    if (peak := status_bytes("VmHWM")) is not None:
        out["peak_rss_bytes"] = peak
    if device.type == "cuda":
        out["peak_gpu_allocated_bytes"] = int(torch.cuda.max_memory_allocated(device))
    return out


class BenchRun(FederatedRun):
    """A federated run that records where each round's time goes."""

    def setup(self) -> None:
        super().setup()
        self.wait_seconds = 0.0
        self.round_results = []
        self.payload_like: torch.Tensor | None = None
        self.local_cpu: dict[str, float] = {}

    def local_training(self, payload, clients, round_idx, lr):
        monitor = next((t.native_id for t in threading.enumerate() if t.name == MONITOR_THREAD), None)
        before, start = thread_cpu_seconds(), time.perf_counter()
        self.round_results = super().local_training(payload, clients, round_idx, lr)
        self.local_cpu = cpu_split(before, thread_cpu_seconds(), time.perf_counter() - start,
                                   main=threading.main_thread().native_id, monitor=monitor)
        return self.round_results

    def aggregate(self, payload):
        self.payload_like = payload.buf
        start = time.perf_counter()
        self.topo.world.barrier()  # the groups that finished first wait here, not in the all_reduce
        self.wait_seconds = time.perf_counter() - start
        return super().aggregate(payload)

    def floor_seconds(self, reps: int = 10) -> float:
        """One all_reduce of a flat tensor of the round's payload size, on the same world."""
        x = torch.zeros_like(self.payload_like)
        times = []
        for i in range(reps + 2):
            self.topo.world.barrier()
            start = time.perf_counter()
            self.topo.world.all_reduce(x)
            if i >= 2:
                times.append(time.perf_counter() - start)
        return statistics.median(times)

    def bench(self, plain: bool = True) -> dict:
        cfg, start = self.cfg, time.time()
        rounds = []
        for t in range(cfg.fed.rounds):
            row = self.run_round(t)
            self.rundir.append_metrics(row)
            ck_start = time.perf_counter()
            stop = t + 1 < cfg.fed.rounds and self.stop_or_checkpoint(t + 1, start)
            checkpoint = time.perf_counter() - ck_start
            res = self.round_results
            split = split_round(row["time"], sum(r.compute_seconds for r in res),
                                sum(r.data_seconds for r in res), self.wait_seconds, checkpoint)
            split.update(micro_batches=sum(r.micro_batches for r in res),
                         samples=sum(r.samples_seen for r in res), tokens=sum(r.tokens for r in res),
                         clients=[r.client for r in res], local_cpu=self.local_cpu)
            rounds.append(split)
            if stop:
                break
        self.monitor.leaving = True
        floor = self.floor_seconds()
        plain_s = None
        if plain:
            c = self.round_results[-1].client if self.round_results else \
                next(i for i, part in enumerate(self.parts) if part)
            records = [self.train_records[i] for i in self.parts[c][:self.cfg.train.micro_batch_size]]
            batch = self.collator.train_batch(records, image_anchor=self.topo.group_size > 1)
            from hpc_fed.bench.plain import plain_step_seconds  # loads a second model copy

            plain_s = plain_step_seconds(cfg, batch, self.dtype, self.topo.device,
                                         interface=self.collator.interface)
        mine = {"rank": self.topo.rank, "group": self.topo.group_index, "rounds": rounds,
                "floor_seconds": floor, "plain_step_seconds": plain_s,
                "startup_seconds": self.startup.rounded(), **peak_memory(self.topo.device)}
        return mine


def local_training_cpu(steady: list[list[dict]]) -> list[dict]:
    """Per rank, a steady round's local training: CPU seconds by thread (main, monitor, other)
    against its wall time, the mean over the rounds."""
    return [{"rank": r, **{k: round(statistics.mean(ranks[r]["local_cpu"][k] for ranks in steady), 4)
                           for k in ("main", "monitor", "other", "wall")}}
            for r in range(len(steady[0]))]


def report(ranks: list[dict], run, one_time: dict) -> dict:
    """bench.json from every rank's record."""
    cfg, topo = run.cfg, run.topo
    rounds = [[r["rounds"][t] for r in ranks] for t in range(min(len(r["rounds"]) for r in ranks))]
    summary = summarize(rounds)
    steady = rounds[1:] if len(rounds) > 1 else rounds
    agg = statistics.median(statistics.mean(r["aggregate"] for r in rk) for rk in steady)
    floor = statistics.median(r["floor_seconds"] for r in ranks)
    plain = [r["plain_step_seconds"] for r in ranks if r["plain_step_seconds"]]
    params = sum(getattr(p, "ds_numel", p.numel()) for p in run.engine.module.parameters())
    return {
        "setup": {"world_size": topo.world_size, "client_groups": topo.num_groups,
                  "ranks_per_client": topo.group_size, "zero_stage": cfg.train.zero_stage,
                  "device": str(topo.device.type), "backend": topo.backend, "dtype": str(run.dtype),
                  "model": cfg.model.location, "parameters": params,
                  "adapter_parameters": sum(getattr(p, "ds_numel", p.numel()) for p in run.engine.params),
                  "micro_batch_size": cfg.train.micro_batch_size, "grad_accum": cfg.train.grad_accum,
                  "sample_clients": cfg.fed.sample_clients, "assignment": cfg.fed.assignment,
                  "prefetch": cfg.data.prefetch_batches(topo.device), "rounds": cfg.fed.rounds,
                  "torch_threads": torch.get_num_threads(), "cores": usable_cpus()},
        **summary,
        "aggregation_seconds": round(agg, 5), "aggregation_floor_seconds": round(floor, 5),
        "aggregation_over_floor": ratio(agg, floor),
        "plain_step_seconds": round(statistics.median(plain), 5) if plain else None,
        "step_efficiency": ratio(statistics.median(plain), summary["step_seconds"]) if plain else None,
        "first_round_seconds": round(max(r["wall"] for r in rounds[0]), 3),
        "local_training_cpu": local_training_cpu(steady),
        "one_time_seconds": one_time,
        "memory": [{k: v for k, v in r.items() if k.startswith("peak")} | {"rank": r["rank"]}
                   for r in ranks],
        "per_round": [{"round": t, "wall": round(max(r["wall"] for r in rk), 4),
                       **{k: round(statistics.mean(r[k] for r in rk), 4) for k in PHASES},
                       "groups_local": [round(r["compute"] + r["data"] + r["local_other"], 4)
                                        for r in rk]}
                      for t, rk in enumerate(rounds)],
    }


def main(argv: list[str] | None = None) -> int:
    from hpc_fed.distributed import shutdown

    p = argparse.ArgumentParser(prog="hpc_fed.bench.worker", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", "-c")
    p.add_argument("--no-plain", action="store_true", help="skip the plain peft + torch step")
    p.add_argument("overrides", nargs="*")
    args = p.parse_args(argv)
    try:
        return _measure(args, imported=time.perf_counter())
    finally:
        shutdown()


@command("hpc-fed bench")
def _measure(args, imported: float) -> int:
    from hpc_fed.config import client_group_size, load_config
    from hpc_fed.distributed import build_topology, init_distributed
    from hpc_fed.runtime.logs import setup_logging

    cfg = load_config(args.config, args.overrides)
    if cfg.baseline != "none":
        raise UsageError(f"hpc-fed bench measures federated rounds; baseline={cfg.baseline} is "
                         "not one: drop the baseline override")
    choice = init_distributed(cfg.distributed)
    setup_logging(int(os.environ["RANK"]))
    joined = time.perf_counter()
    topo = build_topology(client_group_size(cfg, int(os.environ["WORLD_SIZE"])), choice)
    run = BenchRun(cfg, topo)
    one_time = {"imports": round(imported - _STARTED, 3), "init_distributed": round(joined - imported, 3),
                **run.startup.rounded()}
    try:
        mine = run.bench(plain=not args.no_plain)
        ranks = topo.world.all_gather_object(mine)
        if topo.is_main:
            out = report(ranks, run, one_time)
            run.rundir.write_json("bench.json", out)
            print(f"hpc-fed bench: {run.rundir.path / 'bench.json'}: round "
                  f"{out['round_seconds']['median']} s (median), round_efficiency "
                  f"{out['round_efficiency']}, step_efficiency {out['step_efficiency']}, "
                  f"aggregation_over_floor {out['aggregation_over_floor']}", flush=True)
    finally:
        run.close()
    return 0

if __name__ == "__main__":
    from hpc_fed.distributed import exit_process

    exit_process(main())  # not sys.exit: see exit_process
