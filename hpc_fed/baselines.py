"""Baselines in the same run directory format as FL runs (`baseline=...`).

  zero_shot    evaluate the untouched base model.
  local        every client (or only `fed.local_client`) trains alone for fed.rounds rounds,
               never aggregated; each is scored on the global test set, and `final` is their
               mean (the FedMLLM paper's "Local"); `results.json["clients"]` has each one.
  centralized  all clients' data pooled as one client trained data-parallel over the whole
               world (one ZeRO group of all ranks), with the same total optimizer steps as the
               FL run: fed.sample_clients x train.local_steps per round.
"""

from __future__ import annotations

import copy
import time

from hpc_fed.client.local import train_client
from hpc_fed.config import RunConfig
from hpc_fed.fed.sampling import assign_clients
from hpc_fed.train import FederatedRun

def centralized_config(cfg: RunConfig, world_size: int) -> RunConfig:
    """The FL config rewritten as one client holding all data on one group of every rank."""
    c = copy.deepcopy(cfg)
    if c.train.local_steps is not None:
        c.train.local_steps = cfg.train.local_steps * cfg.fed.sample_clients
    else:  # the FL run sees sample_clients/num_clients of the data per round, for local_epochs
        c.train.local_epochs = cfg.train.local_epochs * cfg.fed.sample_clients / cfg.fed.num_clients
    c.fed.num_clients = c.fed.sample_clients = 1
    c.fed.ranks_per_client = world_size
    c.fed.algorithm, c.fed.regularizer, c.fed.weighting = "fedavg", "none", None
    return c


class ZeroShotRun(FederatedRun):
    def run(self) -> dict:
        start = time.time()
        metrics = self.evaluate_global(views=True)
        results = self.results(metrics, metrics, start)
        self.rundir.write_json("results.json", results)
        return results


def mean_metrics(per_client: list[dict]) -> dict:
    """Mean over clients of every numeric metric (recursing into `views`); no per-class report."""
    out = {}
    for key, value in per_client[0].items():
        if isinstance(value, dict) and key == "views":
            out[key] = {v: mean_metrics([m[key][v] for m in per_client]) for v in value}
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = sum(m[key] for m in per_client) / len(per_client)
    return out


class LocalRun(ZeroShotRun):
    def clients(self) -> list[int]:
        c = self.cfg.fed.local_client  # validated against fed.num_clients at config load
        return list(range(self.cfg.fed.num_clients)) if c is None else [c]

    def train_alone(self, client: int) -> tuple[list[float], dict]:
        """fed.rounds rounds of local training from the initial adapter; then the test metrics."""
        cfg, adapter, losses = self.cfg, self.state.global_adapter, []
        for t in range(cfg.fed.rounds):
            lr = self.round_lr(t)
            self.engine.write_adapter(adapter)
            res = train_client(self.engine, self.collator, self.train_records, client,
                               self.parts[client], t, lr, cfg.train)
            adapter = self.engine.read_adapter()
            losses.append(res.train_loss)
        self.engine.write_adapter(adapter)
        return losses, self.evaluate_model(views=True, comm=self.topo.client)

    def run(self) -> dict:
        cfg, start = self.cfg, time.time()
        initial = self.evaluate_global(views=True) if cfg.eval.initial else None
        clients = self.clients()
        plan = assign_clients(clients, self.sizes, self.topo.num_groups)
        mine = {}
        for c in plan[self.topo.group_index]:
            losses, metrics = self.train_alone(c)
            metrics.pop("per_class", None)
            mine[c] = (losses, metrics)
        # group leaders' results reach every rank
        gathered = self.topo.world.all_gather_object(mine if self.topo.is_group_leader else {})
        done = {c: v for part in gathered for c, v in part.items()}
        for t in range(cfg.fed.rounds):
            self.rundir.append_metrics({
                "round": t, "clients": [{"id": c, "samples": self.sizes[c],
                                         "train_loss": round(done[c][0][t], 5)} for c in clients],
                "eval": None})
        per_client = {c: done[c][1] for c in clients}
        final = mean_metrics(list(per_client.values()))
        final["samples"] = int(per_client[clients[0]]["samples"])
        results = self.results(initial, final, start, clients=per_client)
        self.rundir.write_json("results.json", results)
        return results


def run_class(cfg: RunConfig):
    return {"none": FederatedRun, "centralized": FederatedRun, "zero_shot": ZeroShotRun,
            "local": LocalRun}[cfg.baseline]
