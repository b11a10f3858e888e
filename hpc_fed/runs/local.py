"""baseline=local: every client (or only `fed.local_client`) trains alone for fed.rounds rounds,
never aggregated; each is scored on the global test set by its own group, and `final` is their
mean (the FedMLLM paper's "Local"); `results.json["clients"]` has each one."""

from __future__ import annotations

import time

from hpc_fed.client.local import train_client
from hpc_fed.fed.sampling import assign_clients
from hpc_fed.runs.federated import FederatedRun


def mean_metrics(per_client: list[dict]) -> dict:
    """Mean over clients of every numeric metric (recursing into `views`); no per-class report."""
    out = {}
    for key, value in per_client[0].items():
        if isinstance(value, dict) and key == "views":
            out[key] = {v: mean_metrics([m[key][v] for m in per_client]) for v in value}
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = sum(m[key] for m in per_client) / len(per_client)
    return out


class LocalRun(FederatedRun):
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
