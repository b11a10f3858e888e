"""Typed run configuration: dataclass schema <- YAML file <- CLI dotlist, validated at load.

`load_config(path, overrides)` is the only way a run gets its config. The one rule that needs
the world size (divisibility by `fed.ranks_per_client`) is checked by
`hpc_fed.distributed.topology.num_client_groups` once the process group exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from hpc_fed.errors import ConfigError


@dataclass
class TinyModelConfig:
    """How `model.path` is built when it does not exist (the offline tiny LLaVA).

    The tiny base is made trainable for LoRA by a short centralized pre-fit of all its weights
    on easy-VQA's reserved `prefit` image slice (never used by the benchmark), on the open
    (shape / colour) questions only, so yes/no questions stay to be learned federatedly.
    """

    build_if_missing: bool = True
    prefit_steps: int = 400
    prefit_questions: str = "open"  # open (shape/colour only) | all (yes/no too)
    prefit_batch_size: int = 32
    prefit_lr: float = 1e-3
    seed: int = 0


@dataclass
class LoraSettings:
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"]
    )
    # Trained in full alongside the LoRA matrices and aggregated like them.
    modules_to_save: list[str] = field(default_factory=lambda: ["multi_modal_projector"])


@dataclass
class ModelConfig:
    # A local directory or a hub name, loaded with AutoModelForImageTextToText/AutoProcessor.
    path: str = "runs/models/tiny-llava"
    trust_remote_code: bool = False
    lora: LoraSettings = field(default_factory=LoraSettings)
    tiny: TinyModelConfig = field(default_factory=TinyModelConfig)


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


@dataclass
class FedConfig:
    # fedavg | fedprox | fedavgm | fedadagrad | fedyogi | fedadam | scaffold
    algorithm: str = "fedavg"
    # Client-side proximal term: none | prox (FedProx) | adaptive (FedMLLM's layer window);
    # null = prox for fedprox, none otherwise. Works with every algorithm.
    regularizer: Optional[str] = None
    prox_mu: float = 0.01
    mu_w: float = 0.1  # adaptive: weight multiplier inside the layer window
    s_layer: int = 4  # adaptive: regularize decoder layers s..L-1-s
    # How client deltas are averaged: samples (sum n_i d_i / sum n_i) | uniform (mean over
    # sampled clients); null = the algorithm's own default (uniform for the adaptive FedOpt ones).
    weighting: Optional[str] = None
    server_lr: float = 1e-3  # eta of fedadagrad / fedyogi / fedadam
    tau: float = 1e-3  # adaptivity of fedadagrad / fedyogi / fedadam (v starts at tau^2)
    beta1: float = 0.9  # momentum of fedavgm / fedyogi / fedadam
    beta2: float = 0.99  # second-moment decay of fedyogi / fedadam
    rounds: int = 10
    num_clients: int = 10
    sample_clients: int = 2  # clients sampled per round
    ranks_per_client: int = 1  # ranks in one client group (DeepSpeed data-parallel size)
    seed: int = 0  # client sampling; identical on every rank
    local_client: Optional[int] = None  # baseline=local: train only this client (default all)


@dataclass
class TrainConfig:
    # Exactly one of local_steps / local_epochs: local work per client per round.
    local_steps: Optional[int] = 20
    local_epochs: Optional[float] = None
    micro_batch_size: int = 16  # per rank
    grad_accum: int = 1
    lr: float = 2e-3
    # Local optimizer: adamw | sgd. SCAFFOLD's control variates and FedProx's analysis assume
    # SGD steps; with AdamW their terms pass through Adam's normalisation.
    optimizer: str = "adamw"
    min_lr_ratio: float = 0.1  # cosine floor as a fraction of lr
    warmup_rounds: int = 1  # whole rounds of linear warm-up (round r gets lr*(r+1)/warmup)
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    zero_stage: int = 2
    precision: str = "auto"  # auto (bf16 on GPU, fp32 on CPU) | fp32 | bf16
    seed: int = 0  # local data order; offset per client, round and rank
    # Merged over the generated DeepSpeed config, e.g.
    # train.deepspeed={zero_optimization: {stage3_param_persistence_threshold: 0}}
    deepspeed: Dict[str, Any] = field(default_factory=dict)


@dataclass
class EvalConfig:
    every: int = 1  # evaluate the global model every N rounds (0: only initial and final)
    batch_size: int = 32
    initial: bool = True  # evaluate the base model (with a zero LoRA update) before training
    # scoring: log-likelihood of each option (class probabilities, ROC-AUC) | generation:
    # greedy decoding, reply parsed to an option or matched to an open answer
    mode: str = "scoring"
    max_new_tokens: int = 16  # generation mode
    # Views of the test set scored at the start and the end: full (as published), no_image
    # (images removed), no_text (the sample's text removed). Rounds score `full` only.
    modalities: list[str] = field(default_factory=lambda: ["full"])


@dataclass
class OutputConfig:
    dir: str = ""  # run directory; empty: runs/run-<timestamp>
    save_adapter: bool = True
    # Free labels copied into results.json (the benchmark sets dataset, scenario, setting,
    # method, seed; `hpc-fed report` groups by them).
    tags: Dict[str, str] = field(default_factory=dict)


@dataclass
class DistributedConfig:
    """Where ranks compute and how they communicate (hpc_fed/distributed/backend.py)."""

    # auto: this rank's GPU when CUDA is visible, else the CPU | cuda | cpu (a CPU run on a GPU
    # machine: gloo, no GPU touched)
    device: str = "auto"
    # auto: nccl on GPUs, gloo on CPU | nccl | gloo (with device=cuda: GPUs compute, gloo carries
    # the collectives and ranks may share a GPU; for testing several ranks on one GPU)
    backend: str = "auto"
    timeout_s: float = 1800.0  # a collective waiting longer than this fails the run


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    fed: FedConfig = field(default_factory=FedConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    baseline: str = "none"  # none | zero_shot | local | centralized (see hpc_fed/runs/)


KNOWN_ALGORITHMS = ("fedavg", "fedprox", "fedavgm", "fedadagrad", "fedyogi", "fedadam", "scaffold")
KNOWN_PARTITIONS = ("iid", "dirichlet", "source")
KNOWN_PRECISIONS = ("auto", "fp32", "bf16")


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Merge schema, YAML file and `key=value` overrides into a validated RunConfig."""
    merged = OmegaConf.structured(RunConfig)
    try:
        if path is not None:
            path = Path(path)
            if not path.is_file():
                raise ConfigError(f"config file {path} does not exist; pass an existing YAML file")
            merged = OmegaConf.merge(merged, OmegaConf.load(path))
        for item in overrides or []:
            if "=" not in item:
                raise ConfigError(f"override {item!r} is not key=value; write e.g. fed.rounds=3")
        if overrides:
            merged = OmegaConf.merge(merged, OmegaConf.from_dotlist(list(overrides)))
        cfg = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        where = f" in {path}" if path is not None else ""
        key = getattr(exc, "full_key", None)
        raise ConfigError(
            f"config key {key!r}{where}: {exc.msg if hasattr(exc, 'msg') else exc}; "
            "check the spelling against hpc_fed/config.py"
        ) from None
    validate(cfg)
    return cfg


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


def validate(cfg: RunConfig) -> None:
    """Reject impossible values, naming the key, the value and the fix."""
    f, t, d, e, m = cfg.fed, cfg.train, cfg.data, cfg.eval, cfg.model
    cfg.baseline = cfg.baseline.replace("-", "_")  # zero-shot and zero_shot both accepted
    _require(cfg.baseline in ("none", "zero_shot", "local", "centralized"),
             f"baseline ({cfg.baseline!r}) must be none, zero_shot, local or centralized")
    _require(f.local_client is None or 0 <= f.local_client < f.num_clients,
             f"fed.local_client ({f.local_client}) must be in [0, fed.num_clients ({f.num_clients}))")
    _require(f.algorithm in KNOWN_ALGORITHMS,
             f"fed.algorithm ({f.algorithm!r}) is unknown; choose one of {KNOWN_ALGORITHMS}")
    if f.regularizer is None:
        f.regularizer = "prox" if f.algorithm == "fedprox" else "none"
    _require(f.regularizer in ("none", "prox", "adaptive"),
             f"fed.regularizer ({f.regularizer!r}) must be none, prox or adaptive")
    _require(f.prox_mu >= 0 and f.mu_w >= 0 and f.s_layer >= 0,
             f"fed.prox_mu ({f.prox_mu}), fed.mu_w ({f.mu_w}) and fed.s_layer ({f.s_layer}) "
             "must be >= 0")
    if f.regularizer != "none" or f.algorithm == "scaffold":
        _require(cfg.train.zero_stage <= 2,
                 f"train.zero_stage ({cfg.train.zero_stage}) must be <= 2 with fed.regularizer="
                 f"{f.regularizer} / fed.algorithm={f.algorithm}: their loss term needs the whole "
                 "adapter on each rank, which ZeRO-3 partitions")
    _require(f.weighting in (None, "samples", "uniform"),
             f"fed.weighting ({f.weighting!r}) must be samples, uniform or null")
    _require(f.server_lr > 0 and f.tau > 0, f"fed.server_lr ({f.server_lr}) and fed.tau ({f.tau}) "
             "must be > 0")
    _require(0 <= f.beta1 < 1 and 0 <= f.beta2 < 1,
             f"fed.beta1 ({f.beta1}) and fed.beta2 ({f.beta2}) must be in [0, 1)")
    _require(f.rounds >= 1, f"fed.rounds ({f.rounds}) must be >= 1")
    _require(f.num_clients >= 1, f"fed.num_clients ({f.num_clients}) must be >= 1")
    _require(1 <= f.sample_clients <= f.num_clients,
             f"fed.sample_clients ({f.sample_clients}) must be between 1 and fed.num_clients "
             f"({f.num_clients}); lower fed.sample_clients or raise fed.num_clients")
    _require(f.ranks_per_client >= 1, f"fed.ranks_per_client ({f.ranks_per_client}) must be >= 1")
    _validate_data(cfg)
    _require(d.partition in KNOWN_PARTITIONS,
             f"data.partition ({d.partition!r}) is unknown; choose one of {KNOWN_PARTITIONS}")
    _require(d.alpha > 0, f"data.alpha ({d.alpha}) must be > 0 (Dirichlet concentration)")
    for key in ("max_train_samples", "max_test_samples"):
        value = getattr(d, key)
        _require(value is None or value >= 1, f"data.{key} ({value}) must be >= 1 or null")
    _require((t.local_steps is None) != (t.local_epochs is None),
             f"set exactly one of train.local_steps ({t.local_steps}) and train.local_epochs "
             f"({t.local_epochs}); set the other to null")
    _require(t.local_steps is None or t.local_steps >= 1,
             f"train.local_steps ({t.local_steps}) must be >= 1")
    _require(t.local_epochs is None or t.local_epochs > 0,
             f"train.local_epochs ({t.local_epochs}) must be > 0")
    _require(t.micro_batch_size >= 1, f"train.micro_batch_size ({t.micro_batch_size}) must be >= 1")
    _require(t.grad_accum >= 1, f"train.grad_accum ({t.grad_accum}) must be >= 1")
    _require(t.lr >= 0, f"train.lr ({t.lr}) must be >= 0")
    _require(t.optimizer in ("adamw", "sgd"), f"train.optimizer ({t.optimizer!r}) must be adamw or sgd")
    _require(0 <= t.min_lr_ratio <= 1, f"train.min_lr_ratio ({t.min_lr_ratio}) must be in [0, 1]")
    _require(t.warmup_rounds >= 0, f"train.warmup_rounds ({t.warmup_rounds}) must be >= 0")
    _require(t.warmup_rounds <= f.rounds,
             f"train.warmup_rounds ({t.warmup_rounds}) exceeds fed.rounds ({f.rounds}); "
             "lower train.warmup_rounds")
    _require(t.zero_stage in (0, 1, 2, 3), f"train.zero_stage ({t.zero_stage}) must be 0, 1, 2 or 3")
    _require(t.precision in KNOWN_PRECISIONS,
             f"train.precision ({t.precision!r}) must be one of {KNOWN_PRECISIONS}")
    _require(t.max_grad_norm >= 0, f"train.max_grad_norm ({t.max_grad_norm}) must be >= 0")
    _require(e.every >= 0, f"eval.every ({e.every}) must be >= 0 (0 evaluates only at the end)")
    _require(e.batch_size >= 1, f"eval.batch_size ({e.batch_size}) must be >= 1")
    dd = cfg.distributed
    _require(dd.device in ("auto", "cuda", "cpu"),
             f"distributed.device ({dd.device!r}) must be auto, cuda or cpu")
    _require(dd.backend in ("auto", "nccl", "gloo"),
             f"distributed.backend ({dd.backend!r}) must be auto, nccl or gloo")
    _require(not (dd.backend == "nccl" and dd.device == "cpu"),
             "distributed.backend=nccl needs distributed.device cuda or auto; use gloo on the CPU")
    _require(dd.timeout_s > 0, f"distributed.timeout_s ({dd.timeout_s}) must be > 0")
    _require(m.lora.r >= 1, f"model.lora.r ({m.lora.r}) must be >= 1")
    _require(0 <= m.lora.dropout < 1, f"model.lora.dropout ({m.lora.dropout}) must be in [0, 1)")
    _require(bool(m.lora.target_modules), "model.lora.target_modules is empty; name at least one module")
    _require(m.tiny.prefit_questions in ("open", "all"),
             f"model.tiny.prefit_questions ({m.tiny.prefit_questions!r}) must be open or all")
    _require(m.tiny.prefit_steps >= 0, f"model.tiny.prefit_steps ({m.tiny.prefit_steps}) must be >= 0")


def _validate_data(cfg: RunConfig) -> None:
    from hpc_fed.data.prompts import STYLES
    from hpc_fed.data.registry import DATASETS, data_root
    from hpc_fed.data.scenarios import SCENARIOS

    d, e = cfg.data, cfg.eval
    _require(d.name in DATASETS, f"data.name ({d.name!r}) is unknown; choose one of {sorted(DATASETS)}")
    spec = DATASETS[d.name]
    if spec.needs_root:
        data_root(d)
    _require(d.scenario in SCENARIOS,
             f"data.scenario ({d.scenario!r}) is unknown; choose one of {SCENARIOS}")
    _require(0 <= d.beta <= 1, f"data.beta ({d.beta}) must be in [0, 1]")
    _require(0 <= d.p <= 1, f"data.p ({d.p}) must be in [0, 1]")
    _require(d.k >= 0 and (d.scenario != "cross" or d.k <= cfg.fed.num_clients),
             f"data.k ({d.k}) must be between 0 and fed.num_clients ({cfg.fed.num_clients})")
    _require(d.partition != "source" or bool(spec.sources),
             f"data.partition=source needs a dataset made of sources (medvqa); data.name={d.name} "
             "is one pool: use iid or dirichlet")
    _require(d.partition != "source" or 1 <= d.k < cfg.fed.num_clients,
             f"data.partition=source gives data.k ({d.k}) clients the image source and the rest the "
             f"text source: data.k must be between 1 and fed.num_clients - 1 ({cfg.fed.num_clients - 1})")
    _require(d.prompt in STYLES, f"data.prompt ({d.prompt!r}) is unknown; choose one of {STYLES}")
    _require(e.mode in ("scoring", "generation"),
             f"eval.mode ({e.mode!r}) must be scoring or generation")
    _require(not (spec.open_ended and e.mode == "scoring"),
             f"data.name={d.name} has open-ended answers: set eval.mode=generation")
    _require(not (cfg.baseline == "local" and e.mode == "generation" and cfg.train.zero_stage == 3
                  and cfg.fed.ranks_per_client > 1),
             "baseline=local with eval.mode=generation at train.zero_stage=3 and "
             "fed.ranks_per_client > 1 would deadlock (groups decode different clients in "
             "lock-step); use train.zero_stage<=2 or fed.ranks_per_client=1")
    _require(e.max_new_tokens >= 1, f"eval.max_new_tokens ({e.max_new_tokens}) must be >= 1")
    views = ("full", "no_image", "no_text")
    _require("full" in e.modalities and all(v in views for v in e.modalities)
             and len(set(e.modalities)) == len(e.modalities),
             f"eval.modalities ({list(e.modalities)}) must be distinct names from {views}, "
             "including full")


def to_yaml(cfg: RunConfig) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))
