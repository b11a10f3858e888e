"""The `model` section: which vision-language model, its LoRA adapter, and the offline tiny model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from hpc_fed.errors import ConfigError, require

PREFIT_QUESTIONS = ("open", "all")
LORA_SCOPES = ("language", "vision")  # model parts LoRA may go on (hpc_fed/model/roles.py)
SAVE_ROLES = ("projector", "vision")  # roles model.lora.modules_to_save may name
TINY = "tiny"  # model.path of the offline tiny model


@dataclass
class TinyModelConfig:
    """The offline tiny LLaVA (`model.path=tiny`): where it lives and how it is built when that
    folder does not exist yet (or holds an older format).

    The tiny base is made trainable for LoRA by a short centralized pre-fit of all its weights
    on easy-VQA's reserved `prefit` image slice (never used by the benchmark), on the open
    (shape / colour) questions only, so yes/no questions stay to be learned federatedly.
    """

    dir: str = "runs/models/tiny-llava"
    """Folder of the tiny model: built there on first use, reused afterwards."""
    prefit_steps: int = 400
    """Steps of the centralized pre-fit of all weights (0: a random base)."""
    prefit_questions: Annotated[str, Literal[PREFIT_QUESTIONS]] = "open"
    """Questions of the pre-fit: open (shape / colour only) or all (yes/no too)."""
    prefit_batch_size: int = 32
    """Batch size of the pre-fit."""
    prefit_lr: float = 1e-3
    """Learning rate of the pre-fit."""
    seed: int = 0
    """Seed of the tiny model's weights and of its pre-fit."""

    def check(self) -> None:
        require(self.prefit_steps >= 0, f"model.tiny.prefit_steps ({self.prefit_steps}) must be >= 0")


@dataclass
class LoraSettings:
    """The LoRA adapter: its rank and scaling, the modules it goes on, and the modules trained in
    full beside it."""

    r: int = 8
    """LoRA rank."""
    alpha: int = 16
    """LoRA scaling numerator: updates are scaled by alpha / r."""
    dropout: float = 0.05
    """Dropout on the LoRA input, in [0, 1)."""
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"]
    )
    """Module names (last name component) that get LoRA matrices, within model.lora.scope."""
    scope: list[Annotated[str, Literal[LORA_SCOPES]]] = field(default_factory=lambda: ["language"])
    """The model parts LoRA goes on (hpc_fed/model/roles.py); the projector never gets LoRA
    (model.lora.modules_to_save trains it in full)."""
    modules_to_save: list[str] = field(default_factory=lambda: ["projector"])
    """Modules trained in full alongside the LoRA matrices and aggregated like them: a role
    (projector, vision), whatever the architecture calls it, or a module name."""

    def check(self) -> None:
        require(self.r >= 1, f"model.lora.r ({self.r}) must be >= 1")
        require(0 <= self.dropout < 1, f"model.lora.dropout ({self.dropout}) must be in [0, 1)")
        require(bool(self.target_modules), "model.lora.target_modules is empty; name at least one module")
        require(bool(self.scope), f"model.lora.scope is empty; list one or more of {LORA_SCOPES}")


@dataclass
class ModelConfig:
    """The base vision-language model, its LoRA adapter, and the offline tiny model."""

    path: str = "tiny"
    """tiny: the offline tiny model in model.tiny.dir, built there when missing. Anything else is a
    saved model folder or a Hugging Face Hub id, loaded as is and never built (a missing folder is
    an error naming it): with AutoModelForImageTextToText, or, for a model with its own code
    (model.trust_remote_code=true), the Auto class its config.json's auto_map registers."""
    trust_remote_code: bool = False
    """Run the model's own code shipped with it (a Hub id then needs model.revision pinned)."""
    revision: str = ""
    """Hub revision of a Hub id: a commit hash, a tag or a branch ("": the default branch). With
    model.trust_remote_code=true a Hub id needs a commit hash here, since its code runs
    (`hpc-fed download` prints the commit it fetched), unless allow_unpinned_remote_code=true."""
    allow_unpinned_remote_code: bool = False
    """Run a Hub model's own code without a commit hash in model.revision."""
    lora: LoraSettings = field(default_factory=LoraSettings)
    tiny: TinyModelConfig = field(default_factory=TinyModelConfig)
    adapter: str = ""
    """A saved adapter (a run's adapter/ folder, peft format) to start from instead of a fresh LoRA
    init: evaluate it (`hpc-fed eval`) or continue training from it. model.lora must describe the
    same adapter (rank, targets, modules_to_save). "": a fresh adapter."""

    @property
    def location(self) -> str:
        """What from_pretrained loads: the tiny model's folder, or model.path."""
        return self.tiny.dir if self.path == TINY else self.path

    def check(self) -> None:
        require(bool(self.path), "model.path is empty; set it to tiny, a saved model folder or a Hub id")
        if self.adapter:
            from pathlib import Path

            require((Path(self.adapter) / "adapter_config.json").is_file(),
                    f"model.adapter ({self.adapter}) holds no adapter_config.json; point it at a saved "
                    "adapter folder (a run's adapter/ directory)")
            import json

            try:
                saved = json.loads((Path(self.adapter) / "adapter_config.json").read_text())
            except ValueError as exc:
                raise ConfigError(f"model.adapter ({self.adapter}): adapter_config.json is not valid "
                                  f"JSON ({exc})") from None
            require(saved.get("r") == self.lora.r,
                    f"model.adapter ({self.adapter}) has LoRA rank {saved.get('r')}, model.lora.r is "
                    f"{self.lora.r}; set model.lora.r={saved.get('r')} (and the same targets) to load it")
        self.lora.check()
        self.tiny.check()
