"""The `eval` section: when and how the global model is scored."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from hpc_fed.data.scenarios import VIEWS
from hpc_fed.errors import require

# scoring: log-likelihood of each option (class probabilities, ROC-AUC); generation: greedy
# decoding, the reply parsed to an option or matched to an open answer (hpc_fed/eval/evaluate.py)
EVAL_MODES = ("scoring", "generation")


@dataclass
class EvalConfig:
    """When and how the global model is scored on the test set."""

    every: int = 1
    """Evaluate the global model every N rounds (0: only before training and at the end)."""
    batch_size: int = 32
    """Test samples per batch."""
    initial: bool = True
    """Evaluate the base model (with a zero LoRA update) before training."""
    mode: Annotated[str, Literal[EVAL_MODES]] = "scoring"
    """scoring (log-likelihood of each option: class probabilities, ROC-AUC) or generation (greedy
    decoding, the reply parsed to an option or matched to an open answer)."""
    max_new_tokens: int = 16
    """Longest reply decoded in generation mode, in tokens."""
    modalities: list[Annotated[str, Literal[tuple(VIEWS)]]] = field(default_factory=lambda: ["full"])
    """Views of the test set scored at the start and the end: full (as published), no_image
    (images removed), no_text (the sample's text removed); must include full. Rounds score full
    only."""

    def check(self) -> None:
        require(self.every >= 0, f"eval.every ({self.every}) must be >= 0 (0 evaluates only at the end)")
        require(self.batch_size >= 1, f"eval.batch_size ({self.batch_size}) must be >= 1")
        require(self.max_new_tokens >= 1, f"eval.max_new_tokens ({self.max_new_tokens}) must be >= 1")
        require("full" in self.modalities and len(set(self.modalities)) == len(self.modalities),
                f"eval.modalities ({list(self.modalities)}) must be distinct names from {tuple(VIEWS)}, "
                "including full")
