"""baseline=zero_shot: the untouched base model (zero LoRA update), evaluated; final = initial."""

from __future__ import annotations

import time

from hpc_fed.runs.federated import FederatedRun


class ZeroShotRun(FederatedRun):
    def run(self) -> dict:
        start = time.time()
        metrics = self.evaluate_global(views=True)
        results = self.results(metrics, metrics, start)
        self.rundir.write_json("results.json", results)
        return results
