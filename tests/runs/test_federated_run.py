"""The federated run on real gloo groups: FedAvg by collectives equals the single-process average,
at every ZeRO stage and layout; every method's state identical on all ranks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers
from distributed_helpers import cpu_choice, spawn, tiny_run_config


def _federated_worker(rank, world, model_dir, out_dir, stage, ranks_per_client):
    """Run 2 rounds, recording every client's trained adapter and the global after each round."""
    from hpc_fed.distributed import build_topology
    from hpc_fed.runs.federated import FederatedRun

    class RecordingRun(FederatedRun):
        def local_training(self, payload, clients, round_idx, lr):
            results = []
            for c in clients:  # one client at a time: the engine then holds w_c
                results += super().local_training(payload, [c], round_idx, lr)
                self.trained[(round_idx, c)] = (self.engine.read_adapter(), results[-1].num_samples)
            return results

        def run_round(self, t):
            self.globals[t] = {k: v.clone() for k, v in self.state.global_adapter.items()}
            return super().run_round(t)

    cfg = tiny_run_config(model_dir, out_dir, stage, ranks_per_client)
    topo = build_topology(ranks_per_client, cpu_choice())
    run = RecordingRun.__new__(RecordingRun)
    run.trained, run.globals = {}, {}
    FederatedRun.__init__(run, cfg, topo)
    results = run.run()
    torch.save({"final": run.state.global_adapter, "engine": run.engine.read_adapter(),
                "trained": run.trained, "globals": run.globals, "results": results,
                "group": topo.group_index}, f"{out_dir}/rank{rank}.pt")


def _check_federated(tmp_path, world):
    from reference import weighted_mean

    from hpc_fed.fed.aggregate import delta
    from hpc_fed.fed.sampling import sample_clients

    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(world)]
    # every rank of every group holds the same global adapter, bit for bit, also in its engine
    for r in ranks:
        for k, v in ranks[0]["final"].items():
            assert torch.equal(r["final"][k], v), k
            assert torch.equal(r["engine"][k], v), k
    # the collective FedAvg equals a single-process weighted average of the clients' adapters
    trained = {}
    for r in ranks:
        trained.update(r["trained"])
    for t in (0, 1):
        g = ranks[0]["globals"][t]
        nxt = ranks[0]["globals"][1] if t == 0 else ranks[0]["final"]
        clients = sample_clients(4, 3, 0, t)
        deltas = [delta(trained[(t, c)][0], g) for c in clients]
        mean = weighted_mean(deltas, [trained[(t, c)][1] for c in clients])
        for k in g:
            assert torch.allclose(nxt[k], g[k] + mean[k], atol=1e-6, rtol=0), k
        assert any(not torch.equal(nxt[k], g[k]) for k in g), "training changed nothing"
    res = ranks[0]["results"]
    assert res["final"]["samples"] == 24 and res["initial"]["samples"] == 24


@pytest.mark.floors
def test_two_groups_of_one_rank_zero2(tiny_model_dir, tmp_path):
    spawn(_federated_worker, 2, tmp_path, tiny_model_dir, str(tmp_path), 2, 1)
    _check_federated(tmp_path, 2)
    files = {p.name for p in tmp_path.iterdir()}
    assert {"config.yaml", "metrics.jsonl", "results.json", "partition.json", "adapter"} <= files
    # what decides the numbers besides the config: the base weights' checksum, threads, versions
    prov = json.loads((tmp_path / "results.json").read_text())["provenance"]
    manifest = json.loads((Path(tiny_model_dir) / "hpc_fed_tiny.json").read_text())
    assert prov["base_model"]["weights_sha256"] == manifest["weights_sha256"] != ""
    assert prov["threads"]["torch"] == 1 and prov["device"] == "cpu" and prov["dtype"] == "float32"
    # the libraries that ran (a PyPI wheel's metadata lacks the +cuXXX of torch.__version__)
    assert prov["versions"]["torch"].split("+")[0] == torch.__version__.split("+")[0]
    assert prov["versions"]["transformers"] == transformers.__version__


def test_result_does_not_depend_on_how_clients_are_laid_out_on_groups(tiny_model_dir, tmp_path):
    """1 group training the 3 sampled clients in turn == 2 groups sharing them (dropout is on)."""
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    spawn(_federated_worker, 1, one, tiny_model_dir, str(one), 2, 1)
    spawn(_federated_worker, 2, two, tiny_model_dir, str(two), 2, 1)
    a = torch.load(one / "rank0.pt", weights_only=False)
    b = [torch.load(two / f"rank{r}.pt", weights_only=False) for r in range(2)]
    trained_b = {**b[0]["trained"], **b[1]["trained"]}
    assert set(a["trained"]) == set(trained_b)
    for key, (adapter, n) in a["trained"].items():
        assert trained_b[key][1] == n
        if key[0] == 0:  # round 0 starts from the same global: each client's update bit for bit
            for k, v in adapter.items():
                assert torch.equal(v, trained_b[key][0][k]), (key, k)
    # the next global differs only in the float addition order of the weighted sum (later rounds
    # then drift apart chaotically through Adam's normalisation, so they are not compared)
    for k, v in a["globals"][1].items():
        assert torch.allclose(v, b[0]["globals"][1][k], atol=1e-6, rtol=0), k


@pytest.mark.floors
@pytest.mark.parametrize("stage", [2, 3])
def test_two_groups_of_two_ranks(tiny_model_dir, tmp_path, stage):
    spawn(_federated_worker, 4, tmp_path, tiny_model_dir, str(tmp_path), stage, 2)
    _check_federated(tmp_path, 4)


ALGORITHMS = {
    "fedprox": ("fed.algorithm=fedprox", "fed.prox_mu=0.1"),
    "fedavgm": ("fed.algorithm=fedavgm",),
    "fedadagrad": ("fed.algorithm=fedadagrad",),
    "fedyogi": ("fed.algorithm=fedyogi",),
    "fedadam+adaptive": ("fed.algorithm=fedadam", "fed.regularizer=adaptive", "fed.s_layer=1"),
    "scaffold": ("fed.algorithm=scaffold", "train.optimizer=sgd", "train.lr=0.1"),
}


def _algorithms_worker(rank, world, model_dir, out_dir):
    from hpc_fed.distributed import build_topology
    from hpc_fed.runs.federated import FederatedRun

    topo = build_topology(1, cpu_choice())
    out = {}
    for name, overrides in ALGORITHMS.items():
        cfg = tiny_run_config(model_dir, f"{out_dir}/{name}", 2, 1,
                   extra=(*overrides, "fed.server_lr=0.01", "eval.every=0",
                          "eval.initial=false", "output.save_adapter=false"))
        run = FederatedRun(cfg, topo)
        start = {k: v.clone() for k, v in run.state.global_adapter.items()}
        run.run()
        state = run.method.state_dict()
        out[name] = {"start": start, "final": run.state.global_adapter,
                     "server": state, "clients": state["clients"]}
    torch.save(out, f"{out_dir}/algos{rank}.pt")


def test_every_server_optimizer_runs_and_its_state_is_identical_on_all_ranks(tiny_model_dir, tmp_path):
    spawn(_algorithms_worker, 2, tmp_path, tiny_model_dir, str(tmp_path))
    r0, r1 = (torch.load(tmp_path / f"algos{r}.pt", weights_only=False) for r in range(2))
    for name in ALGORITHMS:
        a, b = r0[name], r1[name]
        assert any(not torch.equal(a["final"][k], a["start"][k]) for k in a["final"]), name
        assert all(torch.equal(a["final"][k], b["final"][k]) for k in a["final"]), name
        if name not in ("fedprox",):
            assert a["server"]["buffers"], name
        for buf, tensors in a["server"]["buffers"].items():
            assert all(torch.equal(t, b["server"]["buffers"][buf][k]) for k, t in tensors.items()), name
    # SCAFFOLD: every sampled client's control variate is known, identically, on every rank
    ca, cb = r0["scaffold"]["clients"], r1["scaffold"]["clients"]
    assert set(ca) == set(cb) and len(ca) >= 3
    for c in ca:
        assert all(torch.equal(ca[c]["c"][k], cb[c]["c"][k]) for k in ca[c]["c"])
        assert any(float(t.abs().sum()) > 0 for t in ca[c]["c"].values())


def _image_free_batches_worker(rank, world, model_dir, out_dir, stage):
    from hpc_fed.distributed import build_topology
    from hpc_fed.runs.federated import FederatedRun

    cfg = tiny_run_config(model_dir, out_dir, stage, 2, extra=("data.scenario=missing", "data.beta=0.9",
                                                    "eval.every=0", "output.save_adapter=false"))
    FederatedRun(cfg, build_topology(2, cpu_choice())).run()


@pytest.mark.parametrize("stage", [2, 3])
def test_group_ranks_with_and_without_images_in_a_micro_batch_stay_in_step(tiny_model_dir, tmp_path, stage):
    """beta 0.9: most 4-sample micro-batches of one rank hold no image while the other rank's
    do; the projector's ZeRO gradient collectives must still run on both (zero-weighted pass)."""
    spawn(_image_free_batches_worker, 2, tmp_path, tiny_model_dir, str(tmp_path), stage)
    assert (tmp_path / "results.json").is_file()
