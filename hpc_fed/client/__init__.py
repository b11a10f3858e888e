"""Local training of a federated client on its group's DeepSpeed engine."""
