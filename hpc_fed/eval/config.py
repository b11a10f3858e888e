"""The `eval` section: when and how the global model is scored."""

from __future__ import annotations

from dataclasses import dataclass, field

from hpc_fed.data.scenarios import VIEWS
from hpc_fed.errors import require

# scoring: log-likelihood of each option (class probabilities, ROC-AUC); generation: greedy
# decoding, the reply parsed to an option or matched to an open answer (hpc_fed/eval/evaluate.py)
EVAL_MODES = ("scoring", "generation")


@dataclass
class EvalConfig:
    every: int = 1  # evaluate the global model every N rounds (0: only initial and final)
    batch_size: int = 32
    initial: bool = True  # evaluate the base model (with a zero LoRA update) before training
    # scoring | generation (see EVAL_MODES)
    mode: str = "scoring"
    max_new_tokens: int = 16  # generation mode
    # Views of the test set scored at the start and the end: full (as published), no_image
    # (images removed), no_text (the sample's text removed). Rounds score `full` only.
    modalities: list[str] = field(default_factory=lambda: ["full"])

    def check(self) -> None:
        require(self.every >= 0, f"eval.every ({self.every}) must be >= 0 (0 evaluates only at the end)")
        require(self.batch_size >= 1, f"eval.batch_size ({self.batch_size}) must be >= 1")
        require(self.mode in EVAL_MODES, f"eval.mode ({self.mode!r}) must be one of {EVAL_MODES}")
        require(self.max_new_tokens >= 1, f"eval.max_new_tokens ({self.max_new_tokens}) must be >= 1")
        views = tuple(VIEWS)
        require("full" in self.modalities and all(v in views for v in self.modalities)
                and len(set(self.modalities)) == len(self.modalities),
                f"eval.modalities ({list(self.modalities)}) must be distinct names from {views}, "
                "including full")
