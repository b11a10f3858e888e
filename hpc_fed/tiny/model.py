"""Build the offline tiny LLaVA-style model: CLIP-like vision tower + Llama-like decoder.

Everything is made locally (word-level tokenizer over easy-VQA's vocabulary, CLIP image
processor, chat template) and written with `save_pretrained`, so the same
`AutoModelForImageTextToText` / `AutoProcessor` path that loads a real model loads it.

A randomly initialised base barely learns through LoRA, so by default the whole model is first
pre-fitted (all weights, one process) on the open shape/colour questions of easy-VQA's reserved
`prefit` image slice, which the federated benchmark never sees.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import torch

from hpc_fed.model.config import TinyModelConfig
from hpc_fed.runtime.provenance import package_version, weights_digest

log = logging.getLogger(__name__)

IMAGE_SIZE = 64
PATCH_SIZE = 8
SPECIAL = {"pad": "<pad>", "unk": "<unk>", "bos": "<s>", "eos": "</s>", "image": "<image>"}
TEMPLATE_WORDS = ["user", "assistant", ":", ",", ".", "?", "(", ")"]
MANIFEST = "hpc_fed_tiny.json"
# Bumped when the tokenizer's vocabulary or the build changes: an older cached tiny model is
# rebuilt by `ensure_model` (hpc_fed/tiny/build.py).
FORMAT = 4

# Renders {"role", "content"} messages whose content is a string or a list of
# {"type": "image"} / {"type": "text", "text": ...} parts.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}USER:{% else %}ASSISTANT:{% endif %}"
    "{% if message['content'] is string %} {{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %} <image>"
    "{% elif part['type'] == 'text' %} {{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{% if message['role'] != 'user' %} </s>{% endif %}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


def _vocabulary() -> list[str]:
    """easy-VQA's words, the prompt phrases and the derived tasks' templates (lower case)."""
    import easy_vqa
    from tokenizers.pre_tokenizers import Whitespace

    from hpc_fed.data.datasets import easyvqa_tasks
    from hpc_fed.data import prompts

    words: set[str] = set(TEMPLATE_WORDS) | set(easy_vqa.get_answers())
    pre = Whitespace()
    texts = [prompts.VOCABULARY_TEXT, easyvqa_tasks.VOCABULARY_TEXT]
    for questions, _, _ in (easy_vqa.get_train_questions(), easy_vqa.get_test_questions()):
        texts.extend(questions)
    for text in texts:
        words.update(w for w, _ in pre.pre_tokenize_str(text.lower()))
    return sorted(words)


def build_tokenizer():
    from tokenizers import Tokenizer, normalizers
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import PreTrainedTokenizerFast

    specials = list(SPECIAL.values())
    vocab = {tok: i for i, tok in enumerate(specials + _vocabulary())}
    tok = Tokenizer(WordLevel(vocab=vocab, unk_token=SPECIAL["unk"]))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = Whitespace()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=SPECIAL["bos"], eos_token=SPECIAL["eos"],
        pad_token=SPECIAL["pad"], unk_token=SPECIAL["unk"],
        extra_special_tokens={"image_token": SPECIAL["image"]},
    )
    fast.add_special_tokens({"additional_special_tokens": [SPECIAL["image"]]})
    fast.padding_side = "right"
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_processor():
    from transformers import LlavaProcessor

    try:
        from transformers import CLIPImageProcessorPil as ImageProcessor
    except ImportError:  # older transformers: the PIL backend is the default class
        from transformers import CLIPImageProcessor as ImageProcessor
    image_processor = ImageProcessor(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    # strategy "default" drops CLIP's CLS token: (64/8)^2 = 64 image tokens per image.
    return LlavaProcessor(image_processor=image_processor, tokenizer=build_tokenizer(),
                          patch_size=PATCH_SIZE, vision_feature_select_strategy="default",
                          num_additional_image_tokens=1, chat_template=CHAT_TEMPLATE)


def build_model(tokenizer, seed: int):
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    torch.manual_seed(seed)
    vision = CLIPVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                              num_attention_heads=4, image_size=IMAGE_SIZE, patch_size=PATCH_SIZE)
    text = LlamaConfig(hidden_size=128, intermediate_size=256, num_hidden_layers=4,
                       num_attention_heads=4, num_key_value_heads=4, vocab_size=len(tokenizer),
                       max_position_embeddings=256, pad_token_id=tokenizer.pad_token_id,
                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                       tie_word_embeddings=False)
    config = LlavaConfig(vision_config=vision, text_config=text,
                         image_token_index=tokenizer.convert_tokens_to_ids(SPECIAL["image"]),
                         vision_feature_select_strategy="default", vision_feature_layer=-1,
                         pad_token_id=tokenizer.pad_token_id)
    return LlavaForConditionalGeneration(config)


BUILD_THREADS = 2  # torch threads of every tiny-model build (see make_tiny_model)

# The hpc_fed code that decides the tiny model's weights (tokenizer, initialisation, the pre-fit's
# data, prompts and batches), relative to the package. Its bytes enter the build's recipe: a
# cached model built by other code is rebuilt, never silently reused (a base cached before the
# build changed once made every later result irreproducible from a fresh clone).
# tests/model/test_model.py checks that every hpc_fed module a build imports is listed here or
# in NOT_WEIGHT_SOURCES, and that both lists name only modules a build imports.
RECIPE_SOURCES = ("tiny/model.py", "tiny/prefit.py", "data/collate.py", "data/prompts.py",
                  "data/images.py", "data/records.py", "data/datasets/easyvqa.py",
                  "data/datasets/easyvqa_tasks.py", "model/interfaces/base.py")
# Imported by a build without deciding its weights: package re-exports, errors, the held-out
# accuracy the manifest reports (eval), model.config (its values enter the recipe themselves),
# loading / roles / hub and the other families' interfaces (imported by package __init__s,
# unused by the build), runtime.provenance (the versions and the digest of the saved weights).
NOT_WEIGHT_SOURCES = ("__init__.py", "data/__init__.py", "data/datasets/__init__.py",
                      "model/__init__.py", "eval/__init__.py", "errors.py", "eval/metrics.py",
                      "eval/scoring.py", "model/config.py", "model/loading.py", "model/roles.py",
                      "model/hub.py", "model/interfaces/__init__.py", "model/interfaces/minicpmv.py",
                      "runtime/__init__.py", "runtime/provenance.py", "tiny/__init__.py")
RECIPE_PACKAGES = ("torch", "transformers", "tokenizers", "numpy", "pillow", "easy-vqa")


def recipe(cfg: TinyModelConfig) -> str:
    """What decides a tiny build's weights besides the CPU's kernels, as one short digest: the
    format, BUILD_THREADS, the pre-fit settings, the library versions and the source of
    RECIPE_SOURCES. Stored in the manifest; a cached model whose recipe differs is rebuilt."""
    import hashlib

    settings = {"format": FORMAT, "threads": BUILD_THREADS, "steps": cfg.prefit_steps,
                "questions": cfg.prefit_questions, "batch_size": cfg.prefit_batch_size,
                "lr": cfg.prefit_lr, "seed": cfg.seed,
                "versions": {p: package_version(p) for p in RECIPE_PACKAGES}}
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    package = Path(__file__).resolve().parents[1]
    for rel in RECIPE_SOURCES:
        h.update(rel.encode() + b"\0" + (package / rel).read_bytes() + b"\0")
    return h.hexdigest()[:16]


def make_tiny_model(out_dir: str | Path, cfg: TinyModelConfig | None = None) -> dict:
    """Build, optionally pre-fit, and save the tiny model and processor; returns the manifest."""
    from hpc_fed.tiny.prefit import prefit

    cfg = cfg or TinyModelConfig()
    out_dir = Path(out_dir)
    start = time.time()
    build_recipe = recipe(cfg)  # of the code that runs now
    threads = torch.get_num_threads()
    # A float sum split over k threads rounds differently from one split over j: the pre-fit's
    # weights depend on the thread count. Fixed here, they depend on the config (and the CPU's
    # kernels) only, not on the machine's core count or a rank's OMP_NUM_THREADS.
    torch.set_num_threads(BUILD_THREADS)
    try:
        processor = build_processor()
        model = build_model(processor.tokenizer, cfg.seed)
        n_params = sum(p.numel() for p in model.parameters())
        log.info("tiny model: %d parameters; pre-fit %d steps", n_params, cfg.prefit_steps)
        report = prefit(model, processor, cfg) if cfg.prefit_steps > 0 else {}
    finally:
        torch.set_num_threads(threads)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    manifest = {"format": FORMAT, "recipe": build_recipe, "parameters": n_params,
                "prefit": {"steps": cfg.prefit_steps,
                "batch_size": cfg.prefit_batch_size, "lr": cfg.prefit_lr, "seed": cfg.seed,
                "data": f"easy-VQA prefit slice, {cfg.prefit_questions} questions",
                **report},
                "threads": BUILD_THREADS, "weights_sha256": weights_digest(out_dir),
                "build_seconds": round(time.time() - start, 1)}
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
