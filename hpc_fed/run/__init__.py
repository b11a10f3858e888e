"""The run directory contract (config.yaml, metrics.jsonl, results.json, adapter/) and timers."""
