"""The `data` section: which dataset, how it is split over clients, the modality scenario, the
prompt wording. Allowed values come from the registries that implement them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal, Optional

from hpc_fed.data.partition import PARTITIONS
from hpc_fed.data.prompts import STYLES
from hpc_fed.data.registry import DATASETS, data_root
from hpc_fed.data.scenarios import SCENARIOS
from hpc_fed.errors import require

ON_ERROR = ("raise", "skip")


@dataclass
class DataConfig:
    """The dataset, how it is split over clients, the modality scenario and the prompt wording."""

    name: Annotated[str, Literal[tuple(DATASETS)]] = "easyvqa"
    """The dataset: easyvqa (VQA, 13 answers), easyvqa_memes (binary: rude text AND dark image),
    easyvqa_claims (binary claim vs image; XOR of the modalities), easyvqa_mc (shape / colour
    classes with a text hint), or a disk dataset in data.root: hateful_memes, crisismmd, medvqa,
    fedmllm (docs/datasets.md)."""
    root: str = ""
    """Folder holding a disk dataset in its published layout (docs/datasets.md)."""
    image_root: str = ""
    """fedmllm: folder that relative image paths are joined to ("": data.root)."""
    test_set: str = ""
    """The test set: "" (the dataset's own) or another one it can be scored on; medvqa: slake
    (SLAKE's English test questions, FedMLLM v2's transfer test; training data unchanged)."""
    partition: Annotated[str, Literal[PARTITIONS]] = "dirichlet"
    """How training samples are split over clients: iid, dirichlet (label skew, data.alpha), or
    source (data.k image clients hold the image source, the others the text source, IID within
    each, as FedMLLM v2 splits medvqa)."""
    alpha: float = 0.5
    """Dirichlet concentration of data.partition=dirichlet; smaller means more label skew."""
    scenario: Annotated[str, Literal[SCENARIOS]] = "aligned"
    """FedMLLM multimodal scenario applied to the training partition (test sets stay full):
    aligned, missing (data.beta), cross (data.k image-only clients) or hybrid (data.p)."""
    beta: float = 0.3
    """missing: per-sample probability of losing the text, and of losing the image."""
    k: int = 3
    """cross: number of image-only clients (the others are text-only); partition=source: number
    of clients holding the image source."""
    p: float = 0.8
    """hybrid: per-client probability of keeping each modality."""
    prompt: Annotated[str, Literal[STYLES]] = "modality"
    """Prompt wording: modality (names the modalities present: "based on the image and the
    text", ...), modality_agnostic (FedMLLM's strategy 1: one wording for every combination), or
    the FedMLLM reference code's prompts (fedmllm, fedmllm_agnostic)."""
    list_options: bool = False
    """Append "options: (A) x (B) y" to the question."""
    seed: int = 0
    """Seed of the partition, the scenario and the sample caps; identical on every rank."""
    max_train_samples: Optional[int] = None
    """Cap on training samples, drawn with data.seed (null: all); keeps runs short."""
    max_test_samples: Optional[int] = None
    """Cap on test samples, drawn with data.seed (null: all)."""
    on_error: Annotated[str, Literal[ON_ERROR]] = "raise"
    """An image that does not read: raise (stop before training, naming the file) or skip (drop
    that sample, count it per client in partition.json, list it in skipped.jsonl)."""
    image_cache_mb: int = 256
    """Decoded images kept per process, in MB, least recently used out (0: decode on every use)."""
    prefetch: Optional[int] = None
    """Training batches built ahead on a background thread while the model computes (0: inline).
    null: 2 on GPUs, 0 on CPUs (there the thread takes cores from the compute: measured on 2
    cores, a round took 1.40 s with it and 1.26 s without)."""

    def prefetch_batches(self, device) -> int:
        """data.prefetch for a rank computing on `device` (null: 2 on GPUs, 0 on CPUs)."""
        if self.prefetch is not None:
            return self.prefetch
        return 2 if getattr(device, "type", device) == "cuda" else 0

    def check(self) -> None:
        spec = DATASETS[self.name]
        if spec.needs_root:
            data_root(self)
        require(not self.test_set or self.test_set in spec.test_sets,
                f"data.test_set ({self.test_set!r}) is not a test set of data.name={self.name}; "
                + (f"choose one of {list(spec.test_sets)} or leave it empty" if spec.test_sets
                   else "leave it empty (its own test split)"))
        require(self.partition != "source" or bool(spec.sources),
                f"data.partition=source needs a dataset made of sources (medvqa); data.name={self.name} "
                "is one pool: use iid or dirichlet")
        require(self.alpha > 0, f"data.alpha ({self.alpha}) must be > 0 (Dirichlet concentration)")
        require(0 <= self.beta <= 1, f"data.beta ({self.beta}) must be in [0, 1]")
        require(0 <= self.p <= 1, f"data.p ({self.p}) must be in [0, 1]")
        require(self.k >= 0, f"data.k ({self.k}) must be >= 0")
        require(self.image_cache_mb >= 0, f"data.image_cache_mb ({self.image_cache_mb}) must be >= 0 "
                "(0 keeps no decoded image)")
        require(self.prefetch is None or self.prefetch >= 0, f"data.prefetch ({self.prefetch}) must "
                "be >= 0 (0 builds each batch when it is needed) or null (2 on GPUs, 0 on CPUs)")
        for key in ("max_train_samples", "max_test_samples"):
            value = getattr(self, key)
            require(value is None or value >= 1, f"data.{key} ({value}) must be >= 1 or null")
