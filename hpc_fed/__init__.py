"""hpc_fed: federated LoRA fine-tuning of multimodal LLMs on torch.distributed client groups."""

__version__ = "0.1.0"
