"""Measure what one rank holds after the base model is loaded and the client engine is built,
at ZeRO-2 and ZeRO-3: parameter bytes on the rank, peak host memory (RSS) and, on a
GPU, peak device memory. Runs on the CPU (gloo) and on a GPU (gloo with CUDA tensors: NCCL
refuses two ranks on one GPU).

    python tests/gpu/zero3_memory.py --model DIR [--ranks 2] [--device cpu|cuda] [--out F.json]
    python tests/gpu/zero3_memory.py --build DIR --hidden 1024 --layers 8   # a bigger LLaVA

Each setting runs in fresh processes (peak RSS is per process). The figures feed docs/models.md's
"How large a model fits" table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build(out: str, hidden: int, layers: int) -> int:
    """The tiny model's processor and vision tower with a bigger random Llama decoder."""
    from transformers import LlavaForConditionalGeneration

    from hpc_fed.tiny.model import build_model, build_processor

    processor = build_processor()
    config = build_model(processor.tokenizer, 0).config
    config.text_config.update(dict(hidden_size=hidden, intermediate_size=4 * hidden,
                                   num_hidden_layers=layers, num_attention_heads=hidden // 64,
                                   num_key_value_heads=hidden // 64))
    model = LlavaForConditionalGeneration(config)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return sum(p.numel() for p in model.parameters())


def _rank(rank, world, init_file, model, stage, partitioned, device, out):
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
                       "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1"})
    torch.set_num_threads(1)
    from hpc_fed.bench.stats import status_bytes
    from hpc_fed.client.engine import ClientEngine, base_model_loading
    from hpc_fed.config import DistributedConfig, load_config
    from hpc_fed.distributed import build_topology, init_distributed, shutdown
    from hpc_fed.model.loading import apply_lora, load_base_model

    choice = init_distributed(DistributedConfig(device=device, backend="gloo"),
                              init_method=f"file://{init_file}")
    topo = build_topology(world, choice)  # one client group of all ranks
    cfg = load_config(None, [f"model.path={model}", f"train.zero_stage={stage}", "model.lora.r=8"])
    before = {"rss_before_load": status_bytes("VmRSS")}
    start = time.perf_counter()
    import contextlib
    ctx = base_model_loading(topo, cfg.train, torch.float32) if partitioned else contextlib.nullcontext()
    with ctx:
        base = load_base_model(cfg.model)
    loaded = time.perf_counter() - start
    rss_load = status_bytes("VmHWM")
    anon_load = status_bytes("RssAnon")
    import ctypes
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    before["anon_after_trim"] = status_bytes("RssAnon")
    engine = ClientEngine(apply_lora(base, cfg.model.lora), topo, cfg.train, torch.float32)
    held = sum((p.ds_tensor if hasattr(p, "ds_tensor") else p).numel() * p.element_size()
               for p in engine.module.parameters())
    full = sum((p.ds_numel if hasattr(p, "ds_numel") else p.numel()) for p in engine.module.parameters())
    res = {"rank": rank, "param_bytes_held": held, "params": full, "load_s": round(loaded, 2),
           **before, "peak_rss_after_load": rss_load, "anon_rss_after_load": anon_load,
           "peak_rss_after_engine": status_bytes("VmHWM"), "anon_rss_after_engine": status_bytes("RssAnon")}
    if choice.device.type == "cuda":
        res["peak_gpu_bytes"] = torch.cuda.max_memory_allocated(choice.device)
    Path(out, f"r{rank}.json").write_text(json.dumps(res))
    shutdown()


def measure(model: str, ranks: int, stage: int, partitioned: bool, device: str) -> list[dict]:
    with tempfile.TemporaryDirectory() as d:
        mp.spawn(_rank, args=(ranks, f"{d}/init", model, stage, partitioned, device, d),
                 nprocs=ranks, join=True)
        return [json.loads(Path(d, f"r{r}.json").read_text()) for r in range(ranks)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model")
    ap.add_argument("--build")
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.build:
        print(json.dumps({"built": args.build, "params": build(args.build, args.hidden, args.layers)}))
        return
    rows = []
    for stage, partitioned in ((2, False), (3, False), (3, True)):
        for r in measure(args.model, args.ranks, stage, partitioned, args.device):
            rows.append({"stage": stage, "partitioned_load": partitioned, **r})
            print(json.dumps(rows[-1]), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
