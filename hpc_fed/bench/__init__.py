"""`hpc-fed bench`: where a round's time goes, against what the hardware allows.

  cli.py     the command: launches the measured runs (torchrun, like `hpc-fed launch`),
             repeats and interleaves them, writes the summary bench.json
  worker.py  one measured run on each rank (`python -m hpc_fed.bench.worker`, under torchrun)
  plain.py   the reference step: plain peft + torch.optim on the same model, adapter and batch
  stats.py   the pure arithmetic: phase splits, efficiencies, medians and spreads
  sequential.py  a FedMLLM-style loop (one process, a new HF Trainer per client per round) to
             compare against at equal work
"""
