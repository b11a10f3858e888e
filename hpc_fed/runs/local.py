"""baseline=local: every client (or only `fed.local_client`) trains alone for fed.rounds rounds,
never aggregated; each is scored on the global test set by its own group, and `final` is their
mean (the FedMLLM paper's "Local"); `results.json["clients"]` has each one.

Rounds are the outer loop (round t: each of this group's clients trains once from its own
adapter), so the run stops, checkpoints and resumes between rounds like a federated run: the
checkpoint holds every client's adapter (method.safetensors, clients/<id>/adapter/...) and their
losses so far. Each client's training is keyed by (seed, round, client), so the order of the
loops does not change any client's result.
"""

from __future__ import annotations

import time

from hpc_fed.client.local import train_client
from hpc_fed.errors import ConfigError
from hpc_fed.fed.sampling import assign_clients
from hpc_fed.runs.federated import FederatedRun
from hpc_fed.runtime import checkpoint

NAME = "local"  # the method name in a local run's checkpoints


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

    def mine(self) -> list[int]:
        """The clients this rank's group trains."""
        return assign_clients(self.clients(), self.client_work(), self.topo.num_groups,
                              self.cfg.fed.assignment)[self.topo.group_index]

    def restore(self, found: checkpoint.Checkpoint) -> None:
        if found.method_state.get("name") != NAME:
            raise ConfigError(f"{self.rundir.resume_from} is not a checkpoint of a local run")
        saved = found.method_state["clients"]
        self.adapters = {c: {n: saved[c]["adapter"][n].float() for n in self.engine.names}
                         for c in self.mine()}
        self.losses = {int(c): v for c, v in found.meta["local_losses"].items()}

    def train_round(self, t: int) -> dict[int, float]:
        """One round for each of this group's clients, each from its own adapter."""
        lr, losses = self.round_lr(t), {}
        for c in self.mine():
            self.monitor.at(t, f"local training of client {c}")
            self.engine.write_adapter(self.adapters[c])
            res = train_client(self.engine, self.collator, self.train_records, c, self.parts[c], t, lr,
                               self.cfg.train, prefetch=self.cfg.data.prefetch_batches(self.topo.device))
            self.adapters[c] = self.engine.read_adapter()
            losses[c] = res.train_loss
        return losses

    def gathered(self, mine: dict) -> dict:
        """Every group's per-client values on every rank (group leaders contribute)."""
        parts = self.topo.world.all_gather_object(mine if self.topo.is_group_leader else {})
        return {c: v for part in parts for c, v in part.items()}

    def run(self) -> dict:
        cfg, start = self.cfg, time.time() - self.elapsed
        clients = self.clients()
        if self.state.round == 0:
            self.adapters = {c: dict(self.state.global_adapter) for c in self.mine()}
            self.losses: dict[int, list[float]] = {c: [] for c in clients}
            self.monitor.at(None, "initial evaluation")
            self.initial = self.evaluate_global(views=True) if cfg.eval.initial else None
        for t in range(self.state.round, cfg.fed.rounds):
            for c, loss in self.gathered(self.train_round(t)).items():
                self.losses[c].append(loss)
            self.state.round = t + 1
            self.rundir.append_metrics({
                "round": t, "clients": [{"id": c, "samples": self.sizes[c],
                                         "train_loss": round(self.losses[c][t], 5)} for c in clients],
                "eval": None})
            if t + 1 < cfg.fed.rounds and self.stop_or_checkpoint(t + 1, start, self.checkpoint_state):
                return self.stopped(t + 1, start)
        self.monitor.leaving = True
        mine = {}
        for c in self.mine():
            self.monitor.at(cfg.fed.rounds, f"evaluation of client {c}")
            self.engine.write_adapter(self.adapters[c])
            metrics = self.evaluate_model(views=True, comm=self.topo.client)
            metrics.pop("per_class", None)
            mine[c] = metrics
        per_client = dict(sorted(self.gathered(mine).items()))
        final = mean_metrics(list(per_client.values()))
        final["samples"] = int(per_client[clients[0]]["samples"])
        results = self.results(self.initial, final, start, clients=per_client)
        self.rundir.write_json("results.json", results)
        self.rundir.finish()
        return results

    def checkpoint_state(self) -> dict:
        """Every client's adapter (gathered to every rank; rank 0 writes) and losses so far."""
        adapters = self.gathered(self.adapters)
        return {"method_state": {"name": NAME, "buffers": {},
                                 "clients": {c: {"adapter": a} for c, a in adapters.items()}},
                "local_losses": {str(c): v for c, v in self.losses.items()}}
