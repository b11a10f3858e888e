"""Evaluation: option log-likelihood scoring, metrics, and the sharded evaluation loop."""
