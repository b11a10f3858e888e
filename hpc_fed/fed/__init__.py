"""Federated learning: client sampling and scheduling, aggregation, server optimizers, state."""
