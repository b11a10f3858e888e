"""The `data` section: which dataset, how it is split over clients, the modality scenario, the
prompt wording. Allowed values come from the registries that implement them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from hpc_fed.data.partition import PARTITIONS
from hpc_fed.data.prompts import STYLES
from hpc_fed.data.registry import DATASETS, data_root
from hpc_fed.data.scenarios import SCENARIOS
from hpc_fed.errors import require

ON_ERROR = ("raise", "skip")


@dataclass
class DataConfig:
    # easyvqa (VQA, 13 answers) | easyvqa_memes (binary: rude text AND dark image) | easyvqa_claims
    # (binary claim vs image; XOR of the modalities) | easyvqa_mc (shape/colour classes with a
    # text hint) | hateful_memes | crisismmd | medvqa | fedmllm (see README, "Datasets")
    name: str = "easyvqa"
    # Folder holding a disk dataset in its published layout (see README, "Datasets").
    root: str = ""
    # fedmllm: folder that relative image paths are joined to (default: data.root)
    image_root: str = ""
    # The test set: "" (the dataset's own) or another one it can be scored on: medvqa: slake
    # (SLAKE's English test questions, FedMLLM v2's transfer test; training data unchanged)
    test_set: str = ""
    # iid | dirichlet | source (clients split by data source, e.g. medvqa: data.k image clients
    # hold VQA-RAD, the others MedAlpaca's text-only cards, IID within each, as in FedMLLM v2)
    partition: str = "dirichlet"
    alpha: float = 0.5  # Dirichlet concentration (label skew); smaller = more skew
    # FedMLLM multimodal scenario applied to the training partition (test sets stay full):
    # aligned | missing (data.beta) | cross (data.k image-only clients) | hybrid (data.p)
    scenario: str = "aligned"
    beta: float = 0.3  # missing: per-sample probability of losing the text, and of the image
    k: int = 3  # cross: number of image-only clients (the others are text-only)
    p: float = 0.8  # hybrid: per-client probability of keeping each modality
    # Prompt wording: modality (names the modalities present: "based on the image and the
    # text", ...) | modality_agnostic (FedMLLM's strategy 1: one wording for every combination)
    prompt: str = "modality"
    list_options: bool = False  # append "options: (A) x (B) y" to the question
    seed: int = 0
    # Optional caps to keep runs short; the subset is drawn with `seed`, identical on all ranks.
    max_train_samples: Optional[int] = None
    max_test_samples: Optional[int] = None
    # An image that does not read: raise (stop before training, naming the file) | skip (drop
    # that sample, count it per client in partition.json, list it in skipped.jsonl)
    on_error: str = "raise"
    # Decoded images kept per process (least recently used out); 0: decode on every use
    image_cache_mb: int = 256
    # Training batches built ahead on a background thread while the model computes (0: inline);
    # null: 2 on GPUs, 0 on CPUs (there the thread takes cores from the compute: measured on 2
    # cores, a round took 1.40 s with it and 1.26 s without)
    prefetch: Optional[int] = None

    def prefetch_batches(self, device) -> int:
        """data.prefetch for a rank computing on `device` (null: 2 on GPUs, 0 on CPUs)."""
        if self.prefetch is not None:
            return self.prefetch
        return 2 if getattr(device, "type", device) == "cuda" else 0

    def check(self) -> None:
        require(self.name in DATASETS,
                f"data.name ({self.name!r}) is unknown; choose one of {sorted(DATASETS)}")
        spec = DATASETS[self.name]
        if spec.needs_root:
            data_root(self)
        require(not self.test_set or self.test_set in spec.test_sets,
                f"data.test_set ({self.test_set!r}) is not a test set of data.name={self.name}; "
                + (f"choose one of {list(spec.test_sets)} or leave it empty" if spec.test_sets
                   else "leave it empty (its own test split)"))
        require(self.partition in PARTITIONS,
                f"data.partition ({self.partition!r}) is unknown; choose one of {PARTITIONS}")
        require(self.partition != "source" or bool(spec.sources),
                f"data.partition=source needs a dataset made of sources (medvqa); data.name={self.name} "
                "is one pool: use iid or dirichlet")
        require(self.alpha > 0, f"data.alpha ({self.alpha}) must be > 0 (Dirichlet concentration)")
        require(self.scenario in SCENARIOS,
                f"data.scenario ({self.scenario!r}) is unknown; choose one of {SCENARIOS}")
        require(0 <= self.beta <= 1, f"data.beta ({self.beta}) must be in [0, 1]")
        require(0 <= self.p <= 1, f"data.p ({self.p}) must be in [0, 1]")
        require(self.k >= 0, f"data.k ({self.k}) must be >= 0")
        require(self.on_error in ON_ERROR, f"data.on_error ({self.on_error!r}) must be one of {ON_ERROR}")
        require(self.prompt in STYLES, f"data.prompt ({self.prompt!r}) is unknown; choose one of {STYLES}")
        require(self.image_cache_mb >= 0, f"data.image_cache_mb ({self.image_cache_mb}) must be >= 0 "
                "(0 keeps no decoded image)")
        require(self.prefetch is None or self.prefetch >= 0, f"data.prefetch ({self.prefetch}) must "
                "be >= 0 (0 builds each batch when it is needed) or null (2 on GPUs, 0 on CPUs)")
        for key in ("max_train_samples", "max_test_samples"):
            value = getattr(self, key)
            require(value is None or value >= 1, f"data.{key} ({value}) must be >= 1 or null")
