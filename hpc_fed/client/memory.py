"""How much GPU memory one rank needs for the model states of LoRA fine-tuning under ZeRO, and
so how large a model fits per client-group size (the table in docs/models.md).

Model states per rank, for a base of N parameters stored in `param_bytes` (2 for bf16) and an
adapter of A trainable parameters (LoRA + modules_to_save), in a client group of G ranks:

  base        N * param_bytes        stages 0-2: every rank holds all of it
              N * param_bytes / G    stage 3: created partitioned (zero3_groups.py)
  adapter     A * param_bytes        its weights (/G at stage 3)
  gradients   A * param_bytes        (/G from stage 2)
  optimizer   A * 12                 fp32 master copy + Adam's two moments (/G from stage 1)
  working set 2 * the largest layer  stage 3 only: one layer gathered, the next prefetched

Activations, the CUDA context and allocator slack are not model states; they depend on the
micro-batch and sequence length and are left to `reserve_bytes` (measure them with a real run).
The stage-3 partition size matches what the engine holds, checked in tests/client (DeepSpeed
pads each partition to a multiple of G elements, a few bytes).
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1 << 30


@dataclass(frozen=True)
class ModelStates:
    base: float
    adapter: float
    gradients: float
    optimizer: float
    working_set: float

    @property
    def total(self) -> float:
        return self.base + self.adapter + self.gradients + self.optimizer + self.working_set


def model_states(params: float, adapter: float, stage: int, group_size: int,
                 param_bytes: int = 2, largest_layer: float = 0.0) -> ModelStates:
    """Bytes of model states on one rank (see the module docstring)."""
    g = max(1, group_size)
    return ModelStates(
        base=params * param_bytes / (g if stage == 3 else 1),
        adapter=adapter * param_bytes / (g if stage == 3 else 1),
        gradients=adapter * param_bytes / (g if stage >= 2 else 1),
        optimizer=adapter * 12 / (g if stage >= 1 else 1),
        working_set=2 * largest_layer * param_bytes if stage == 3 and g > 1 else 0.0)


def largest_model(gpu_bytes: float, reserve_bytes: float, stage: int, group_size: int,
                  param_bytes: int = 2, adapter_fraction: float = 0.005,
                  layer_fraction: float = 0.0125) -> float:
    """The most base parameters whose model states fit beside `reserve_bytes` (activations,
    context) on a GPU of `gpu_bytes`, with an adapter of `adapter_fraction` x N and a largest
    layer of `layer_fraction` x N (1/80: a 72B decoder's layer)."""
    per_param = model_states(1.0, adapter_fraction, stage, group_size, param_bytes,
                             layer_fraction).total
    return max(0.0, gpu_bytes - reserve_bytes) / per_param
