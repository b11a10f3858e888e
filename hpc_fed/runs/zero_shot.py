"""baseline=zero_shot: the untouched base model (zero LoRA update), or the saved adapter of
model.adapter (`hpc-fed eval`), evaluated; final = initial."""

from __future__ import annotations

import time

from hpc_fed.runs.federated import FederatedRun


class ZeroShotRun(FederatedRun):
    def run(self) -> dict:
        start = time.time()
        metrics = self.evaluate_global(views=True)
        results = self.results(metrics, metrics, start)
        self.rundir.write_json("results.json", results)
        if self.topo.is_main:
            metric = self.data.primary_metric
            views = ", ".join(f"{v} {m.get(metric, float('nan')):.4f}"
                              for v, m in (metrics.get("views") or {}).items())
            what = f"adapter {self.cfg.model.adapter}" if self.cfg.model.adapter else "base model"
            print(f"{metric}: {metrics.get(metric, float('nan')):.4f} on {metrics['samples']} test "
                  f"samples ({what}{'; ' + views if views else ''}); {self.rundir.path / 'results.json'}",
                  flush=True)
        return results
