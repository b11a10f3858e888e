"""The federated run: the round loop.

Each round reads like the algorithm: sample clients -> assign them to groups -> local training
-> one all_reduce of the round payload -> server update -> evaluate -> log.
"""

from __future__ import annotations

import logging
import time

import torch

from hpc_fed.client.config import resolve_precision
from hpc_fed.client.engine import ClientEngine, base_model_loading
from hpc_fed.client.local import ClientResult, local_steps, train_client
from hpc_fed.client.schedule import round_lr
from hpc_fed.config import RunConfig, to_container
from hpc_fed.data.collate import Collator
from hpc_fed.data.federated import build_federated_data, check_scorable, partition_summary
from hpc_fed.data.registry import headline_metric
from hpc_fed.data.scenarios import test_view
from hpc_fed.runtime.provenance import provenance
from hpc_fed.distributed import Topology
from hpc_fed.eval.evaluate import evaluate
from hpc_fed.fed.aggregate import delta, flatten, unflatten
from hpc_fed.fed.methods import method_from_config
from hpc_fed.fed.payload import ReducedRound, RoundPayload
from hpc_fed.fed.regularizers import num_decoder_layers
from hpc_fed.fed.sampling import assign_clients, sample_clients
from hpc_fed.fed.state import FederatedState
from hpc_fed.tiny.build import ensure_model
from hpc_fed.model.loading import (adapter_state, apply_lora, load_base_model, load_interface,
                                   load_processor)
from hpc_fed.model.roles import module_roles
from hpc_fed.errors import ConfigError, HpcFedError
from hpc_fed.runtime import checkpoint
from hpc_fed.runtime.progress import RoundTable
from hpc_fed.runtime.monitor import RankMonitor
from hpc_fed.runs.rundir import RunDir, resume_mismatch
from hpc_fed.runtime.stop import StopRequest
from hpc_fed.runtime.timing import PhaseTimer

log = logging.getLogger("hpc_fed")


class FederatedRun:
    """Owns the engine, the data partition and the federated state of one run."""

    def __init__(self, cfg: RunConfig, topo: Topology):
        self.cfg, self.topo = cfg, topo
        self.stop = StopRequest()  # SIGTERM, SIGUSR2, $HPC_FED_STOP_FILE (hpc_fed/runtime/stop.py)
        self.started = False  # the run directory is ours (RunDir.start ran)
        d = cfg.distributed
        self.monitor = RankMonitor(self.stop, topo.rank, topo.world_size, d.heartbeat_s, d.watchdog_s,
                                   cfg.checkpoint.stop_grace_s, self.abandoned).start()
        try:
            self.setup()
        except BaseException:
            self.monitor.close()
            raise

    def setup(self) -> None:
        """Model, data, engine, method state; resume; then the run directory is written."""
        cfg, topo = self.cfg, self.topo
        self.rundir = RunDir.open(cfg, topo.world)  # writes nothing until start() below
        # one-time costs (hpc-fed bench reports them), each a long phase for the watchdog
        self.startup = PhaseTimer(on_phase=lambda name: self.monitor.at(None, name, long=True))
        with self.startup.phase("model_build"):
            ensure_model(cfg.model, topo.world)
        self.dtype = resolve_precision(cfg.train.precision, topo.device)
        with self.startup.phase("data"):
            processor = load_processor(cfg.model)
            self.collator = Collator(processor, cfg.data.prompt, cfg.data.list_options,
                                     cfg.data.image_cache_mb, interface=load_interface(cfg.model))
            self.data = self.build_data()
            check_scorable(self.data, cfg.eval.mode)
        self.data.primary_metric = headline_metric(self.data.primary_metric, cfg.eval.mode)
        self.train_records, self.test_records = self.data.train, self.data.test
        self.parts, self.sizes = self.data.parts, self.data.sizes
        with self.startup.phase("model_load"):
            with base_model_loading(topo, cfg.train, self.dtype):  # partitioned at ZeRO-3
                base = load_base_model(cfg.model, self.dtype)
            roles = module_roles(base)
            torch.manual_seed(cfg.fed.seed)  # adapter init: identical on every rank
            model = apply_lora(base, cfg.model.lora, roles)
        with self.startup.phase("engine_build"):
            self.engine = ClientEngine(model, topo, cfg.train, self.dtype, interface=self.collator.interface)
        if cfg.train.zero_stage == 3 and topo.group_size == 1 and topo.is_main:
            log.warning("train.zero_stage=3 with client groups of one rank partitions nothing and "
                        "still pays ZeRO-3's per-module gather hooks (measured 1.8x ZeRO-2's local "
                        "step on the CPU); use train.zero_stage=2, or fed.ranks_per_client > 1 for "
                        "a model that needs partitioning")
        if cfg.model.adapter:  # start from a saved adapter (hpc-fed eval, or a warm start)
            self.engine.write_adapter(adapter_state(self.engine.module, cfg.model.adapter))
        self.method = method_from_config(cfg.fed, self.engine.names, num_decoder_layers(model.config),
                                         roles.language)
        self.state = FederatedState(round=0, global_adapter=self._broadcast_initial(),
                                    method_state=self.method.state_dict())
        self.initial = self.final = None  # evaluations so far (restored on resume)
        self.elapsed = 0.0  # seconds of earlier attempts of this run
        resumed = None
        if self.rundir.resume_from is not None:
            self.monitor.at(None, "resume", long=True)
            resumed = self.resume()
        self.rundir.start(cfg, resumed)
        self.started = True
        self.rundir.write_json("partition.json", partition_summary(self.data, cfg.data))
        if self.data.skipped:
            self.rundir.write_jsonl("skipped.jsonl", self.data.skipped)
            if topo.is_main:
                log.warning("data.on_error=skip: %d sample(s) with unreadable images left out (per "
                            "client in partition.json, each in %s)", len(self.data.skipped),
                            self.rundir.path / "skipped.jsonl")

    def close(self) -> None:
        """Stop the rank monitor, give the signals back and close the trackers (the run is over,
        however it ended)."""
        self.monitor.close()
        if getattr(self, "rundir", None) is not None:
            self.rundir.close()

    def abandoned(self, reason: str, failure: bool = False) -> None:
        """The run leaves mid-round (a stop deadline passed; with `failure`, a rank stopped
        answering): rank 0 notes in stopped.json the round the newest checkpoint continues from."""
        if not (self.started and self.topo.is_main):
            return
        newest = checkpoint.latest(self.rundir.checkpoints)
        done = checkpoint.round_of(newest) if newest is not None else 0
        self.rundir.write_json("stopped.json", {
            "stopped_after_round": done, "rounds": self.cfg.fed.rounds, "abandoned": True,
            "failure": failure, "reason": reason,
            "resumes": f"from checkpoint {newest.name}" if newest else "from the start"})

    def build_data(self):
        """The partitioned, scenario-applied training data and the test set."""
        return build_federated_data(self.cfg.data, self.cfg.fed.num_clients)

    def _broadcast_initial(self) -> dict[str, torch.Tensor]:
        adapter = self.engine.read_adapter()
        flat = self.topo.world.broadcast(flatten(adapter, self.engine.names), src=0)
        return unflatten(flat, adapter, self.engine.names)

    # --- checkpoints -------------------------------------------------------------------
    def resume(self) -> int:
        """Continue from the checkpoint the run directory names: rank 0 reads it, every rank
        gets it (no shared filesystem needed); refused when the config or the world differs."""
        found = error = None
        if self.topo.is_main:
            try:
                found = checkpoint.load(self.rundir.resume_from)
                error = resume_mismatch(found.meta, self.cfg, self.topo.world_size, self.rundir.path)
            except HpcFedError as exc:
                error = str(exc)
        error, found = self.topo.world.broadcast_object((error, None if error else found), src=0)
        if error:
            raise ConfigError(error)
        self.restore(found)
        self.state.round = found.round
        self.initial, self.final = found.meta.get("initial"), found.meta.get("final")
        self.elapsed = float(found.meta.get("seconds", 0.0))
        log.info("resuming %s after round %d of %d (checkpoint %s)", self.rundir.path, found.round,
                 self.cfg.fed.rounds, self.rundir.resume_from.name)
        return found.round

    def restore(self, found: checkpoint.Checkpoint) -> None:
        """Take the federated state of a checkpoint (the global adapter and the method's state)."""
        self.state.global_adapter = {n: found.adapter[n].float() for n in self.engine.names}
        self.method.load_state_dict(found.method_state)
        self.state.method_state = self.method.state_dict()
        self.engine.write_adapter(self.state.global_adapter)

    def save_checkpoint(self, seconds: float, method_state: dict | None = None, **meta) -> None:
        """Rank 0 writes the state after self.state.round rounds (every rank holds the same)."""
        if not self.topo.is_main:
            return
        meta = {"world_size": self.topo.world_size, "client_groups": self.topo.num_groups,
                "config": to_container(self.cfg), "initial": self.initial, "final": self.final,
                "seconds": round(seconds, 1), **meta}
        checkpoint.save(self.rundir.checkpoints,
                        checkpoint.Checkpoint(self.state.round, self.state.global_adapter,
                                              method_state or self.method.state_dict(), meta),
                        self.cfg.checkpoint.keep)

    def stop_or_checkpoint(self, rounds_done: int, start: float, state=None) -> bool:
        """After a round that is not the last: agree on a stop (a collective), write the
        checkpoint that is due (or that the stop needs); True when the run must stop now.
        `state()` gives save_checkpoint's extra arguments (called on every rank: it may gather)."""
        every = self.cfg.checkpoint.every
        self.monitor.at(rounds_done, "stop agreement")
        stop = self.stop.agreed(self.topo.world)
        if stop:
            self.monitor.leaving = True  # checkpoint and leave: no deadline now
        if stop or (every and rounds_done % every == 0):
            self.monitor.at(rounds_done, "checkpoint", long=True)
            self.save_checkpoint(time.time() - start, **(state() if state is not None else {}))
        return stop

    # --- one round --------------------------------------------------------------------
    def local_training(self, payload: RoundPayload, clients: list[int], round_idx: int,
                       lr: float) -> list[ClientResult]:
        """Train this group's clients in turn from the global adapter, each into the payload."""
        g, method = self.state.global_adapter, self.method
        results: list[ClientResult] = []
        for c in clients:
            self.engine.write_adapter(g)
            res = train_client(self.engine, self.collator, self.train_records, c, self.parts[c],
                               round_idx, lr, self.cfg.train, method.client_terms(c, g, self.topo.device),
                               prefetch=self.cfg.data.prefetch_batches(self.topo.device))
            local = self.engine.read_adapter()
            payload.add(c, method.client_weight(res.num_samples), delta(local, g), res.train_loss,
                        res.num_samples, method.client_extras(c, g, local, res.steps, lr))
            results.append(res)
        return results

    def aggregate(self, payload: RoundPayload) -> ReducedRound:
        """The round's one all_reduce, then the method's server update on every rank."""
        reduced = payload.reduce(self.topo.world, contribute=self.topo.is_group_leader)
        self.state.global_adapter = self.method.server_update(self.state.global_adapter, reduced)
        self.state.method_state = self.method.state_dict()
        self.engine.write_adapter(self.state.global_adapter)
        return reduced

    def evaluate_global(self, views: bool = False) -> dict:
        """Metrics of the current global adapter on the test set, sharded over the world; with
        `views`, also on the test-set views of eval.modalities (images / texts removed) and a
        per-class report."""
        self.engine.write_adapter(self.state.global_adapter)
        return self.evaluate_model(views, self.topo.world)

    def evaluate_model(self, views: bool, comm) -> dict:
        """Metrics of the engine's current weights, sharded over the ranks of `comm` (see
        evaluate_global)."""
        e = self.cfg.eval
        # ZeRO-3 decoding gathers parameters in the client group at every step: ranks that
        # finish early keep stepping (transformers' synced_gpus, a world-group all_reduce).
        synced = self.cfg.train.zero_stage == 3 and self.topo.group_size > 1

        def run(records, per_class=False):
            return evaluate(self.engine.module, self.collator, records, self.topo.device,
                            e.batch_size, self.dtype, comm=comm, mode=e.mode,
                            max_new_tokens=e.max_new_tokens, per_class=per_class, synced=synced)

        metrics = run(self.test_records, per_class=views)
        if views and len(e.modalities) > 1:
            metrics["views"] = {v: run(test_view(self.test_records, v))
                                for v in e.modalities if v != "full"}
        return metrics

    def client_work(self) -> list[int]:
        """Each client's local steps in a round: the load that fed.assignment balances."""
        return [local_steps(self.cfg.train, n, self.topo.group_size) for n in self.sizes]

    def round_lr(self, t: int) -> float:
        tc = self.cfg.train
        return round_lr(t, self.cfg.fed.rounds, tc.lr, tc.warmup_rounds, tc.min_lr_ratio)

    def run_round(self, t: int) -> dict:
        cfg, timer = self.cfg, PhaseTimer(on_phase=lambda name: self.monitor.at(t, name))
        with timer.phase("round"):
            lr = self.round_lr(t)
            clients = sample_clients(cfg.fed.num_clients, cfg.fed.sample_clients, cfg.fed.seed, t)
            plan = assign_clients(clients, self.client_work(), self.topo.num_groups, cfg.fed.assignment)
            payload = RoundPayload(clients, self.engine.names, self.state.global_adapter,
                                   self.method.extras)
            with timer.phase("local_train"):
                self.local_training(payload, plan[self.topo.group_index], t, lr)
            with timer.phase("aggregate"):
                reduced = self.aggregate(payload)
            metrics, last = None, t + 1 == cfg.fed.rounds
            if last or (cfg.eval.every and (t + 1) % cfg.eval.every == 0):
                with timer.phase("eval"):  # the last round's is the final, with views
                    metrics = self.evaluate_global(views=last)
        self.state.round = t + 1
        group_of = {c: g for g, cs in enumerate(plan) for c in cs}
        rows = [{"id": c, "group": group_of[c], "samples": reduced.client_samples[c],
                 "train_loss": round(reduced.client_loss[c], 5)} for c in clients]
        train_loss = sum(r["train_loss"] * r["samples"] for r in rows) / sum(r["samples"] for r in rows)
        return {"round": t, "lr": lr, "clients": rows, "train_loss": round(train_loss, 5),
                "eval": metrics, "time": timer.rounded()}

    # --- whole run ----------------------------------------------------------------------
    def run(self) -> dict:
        cfg, start = self.cfg, time.time() - self.elapsed
        table = RoundTable(cfg.fed.rounds, enabled=self.topo.is_main, metric=self.data.primary_metric)
        if self.state.round == 0:
            self.monitor.at(None, "initial evaluation")
            self.initial = self.evaluate_global(views=True) if cfg.eval.initial else None
        table.initial(self.initial)
        for t in range(self.state.round, cfg.fed.rounds):
            row = self.run_round(t)
            self.final = row["eval"] or self.final
            self.rundir.append_metrics(row)
            table.add(row)
            if t + 1 == cfg.fed.rounds:
                break
            if self.stop_or_checkpoint(t + 1, start):
                self.save_adapter()  # the global adapter so far, loadable as is (PeftModel.from_pretrained)
                return self.stopped(t + 1, start)
        self.monitor.leaving = True
        self.save_adapter()
        results = self.results(self.initial, self.final, start)
        self.rundir.write_json("results.json", results)
        self.rundir.finish()
        table.close(results, self.rundir.path)
        return results

    def stopped(self, rounds_done: int, start: float) -> dict:
        """Asked to stop: leave stopped.json (no results.json, so the run is not done) and return."""
        info = {"stopped_after_round": rounds_done, "rounds": self.cfg.fed.rounds,
                "reason": self.stop.reason or "stop requested", "wall_seconds": round(time.time() - start, 1)}
        self.rundir.write_json("stopped.json", info)
        if self.topo.is_main:
            log.warning("stopped cleanly after round %d of %d (%s); %s has a checkpoint but no "
                        "results.json: run the same command again to continue it", rounds_done,
                        self.cfg.fed.rounds, info["reason"], self.rundir.path)
        return info

    def results(self, initial, final, start: float, **extra) -> dict:
        """The results.json object."""
        return {"initial": initial, "final": final, "primary_metric": self.data.primary_metric,
                "tags": dict(self.cfg.output.tags), "rounds": self.cfg.fed.rounds,
                "algorithm": self.cfg.fed.algorithm, "baseline": self.cfg.baseline,
                "world_size": self.topo.world_size, "client_groups": self.topo.num_groups,
                "wall_seconds": round(time.time() - start, 1),
                **({"provenance": provenance(self.cfg.model.location, self.topo.device, self.dtype)}
                   if self.topo.is_main else {}), **extra}  # rank 0 writes results.json

    def save_adapter(self) -> None:
        """The global adapter as peft saves it (loadable with PeftModel.from_pretrained), in fp32
        whatever the training precision: the values themselves, not the module's rounded copy."""
        if not self.cfg.output.save_adapter:
            return
        if self.topo.is_main:
            module = self.engine.module
            values = module.state_dict()  # peft picks the adapter's entries by their names
            values.update(self.state.global_adapter)
            module.save_pretrained(str(self.rundir.adapter_dir), safe_serialization=True,
                                   state_dict=values)
        self.topo.world.barrier()
