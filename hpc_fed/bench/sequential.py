"""The way research code runs federated MLLM fine-tuning, as the reference `hpc-fed bench
--compare-sequential` measures hpc_fed against (the FedMLLM code base's structure): one process;
every round, for each sampled client in turn, the global adapter is loaded into the model, a new
Hugging Face `Trainer` trains it for the client's local steps, and the client's adapter state
dict is deep-copied; the server averages the copies key by key in Python (FedAvg weighted by
samples) and loads the result.

Same work as hpc_fed's run of the same config: the same model and LoRA, the same data,
partition and scenario, the same sampled clients, local steps, micro-batch, learning rate and
collation. No evaluation (the figures compare training rounds).

    python -m hpc_fed.bench.sequential --config C --rounds 5 --out F.json [k=v ...]
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from hpc_fed.errors import UsageError, command
from hpc_fed.launch.threads import usable_cpus


class _Rows(torch.utils.data.Dataset):
    def __init__(self, records):
        self.records = records

    def __len__(self):
        return len(self.records)

    def __getitem__(self, i):
        return self.records[i]


def run(cfg, rounds: int) -> dict:
    from peft import get_peft_model_state_dict, set_peft_model_state_dict
    from transformers import PrinterCallback, Trainer, TrainingArguments
    from transformers.utils import logging as hf_logging

    from hpc_fed.client.config import resolve_precision
    from hpc_fed.client.local import local_steps
    from hpc_fed.data.collate import Collator
    from hpc_fed.data.federated import build_federated_data
    from hpc_fed.distributed.collectives import LocalComm
    from hpc_fed.fed.sampling import sample_clients
    from hpc_fed.tiny.build import ensure_model
    from hpc_fed.model.loading import apply_lora, load_base_model, load_processor

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()

    ensure_model(cfg.model, LocalComm())  # a world of one, no process group
    device = torch.device("cpu") if not torch.cuda.is_available() or cfg.distributed.device == "cpu" \
        else torch.device("cuda")
    dtype = resolve_precision(cfg.train.precision, device)
    processor = load_processor(cfg.model)
    collator = Collator(processor, cfg.data.prompt, cfg.data.list_options, cfg.data.image_cache_mb)
    data = build_federated_data(cfg.data, cfg.fed.num_clients)
    torch.manual_seed(cfg.fed.seed)
    model = apply_lora(load_base_model(cfg.model, dtype), cfg.model.lora).to(device)
    global_state = copy.deepcopy(get_peft_model_state_dict(model))

    def collate(records):
        batch = collator.train_batch(records)
        if "pixel_values" in batch:
            batch["pixel_values"] = batch["pixel_values"].to(dtype)
        return batch

    per_round, in_train = [], []
    for t in range(rounds):
        start, trained = time.perf_counter(), 0.0
        clients = sample_clients(cfg.fed.num_clients, cfg.fed.sample_clients, cfg.fed.seed, t)
        states, weights = [], []
        for c in clients:
            set_peft_model_state_dict(model, global_state)
            records = [data.train[i] for i in data.parts[c]]
            args = TrainingArguments(
                output_dir=os.path.join("/tmp", f"hpc-fed-sequential-{os.getpid()}"),
                max_steps=local_steps(cfg.train, len(records), 1),
                per_device_train_batch_size=cfg.train.micro_batch_size,
                gradient_accumulation_steps=cfg.train.grad_accum, learning_rate=cfg.train.lr,
                weight_decay=cfg.train.weight_decay, max_grad_norm=cfg.train.max_grad_norm or 0.0,
                lr_scheduler_type="constant", optim="adamw_torch", save_strategy="no",
                report_to=[], logging_strategy="no", disable_tqdm=True, remove_unused_columns=False,
                dataloader_num_workers=0, seed=cfg.train.seed + t, bf16=dtype == torch.bfloat16,
                use_cpu=device.type == "cpu")
            trainer = Trainer(model=model, args=args, train_dataset=_Rows(records),
                              data_collator=collate)
            trainer.remove_callback(PrinterCallback)
            t0 = time.perf_counter()
            trainer.train()
            trained += time.perf_counter() - t0
            states.append(copy.deepcopy(get_peft_model_state_dict(model)))
            weights.append(len(records))
            del trainer
        total = float(sum(weights))
        global_state = {k: sum(s[k].float() * (w / total) for s, w in zip(states, weights)).to(
            global_state[k].dtype) for k in global_state}
        set_peft_model_state_dict(model, global_state)
        per_round.append(time.perf_counter() - start)
        in_train.append(trained)
    steady = per_round[1:] if len(per_round) > 1 else per_round
    return {"rounds": per_round, "train_seconds": in_train,
            "round_seconds": {"median": round(statistics.median(steady), 4),
                              "min": round(min(steady), 4), "max": round(max(steady), 4),
                              "n": len(steady)},
            "share_in_trainer_train": round(sum(in_train[1:] or in_train) / sum(steady), 4),
            "torch_threads": torch.get_num_threads(), "cores": usable_cpus()}


@command("hpc-fed bench")
def main(argv: list[str] | None = None) -> int:
    from hpc_fed.config import load_config
    from hpc_fed.launch.threads import threads_per_rank
    from hpc_fed.runtime.owned import json_with, replace_problem, write_new_or_owned

    p = argparse.ArgumentParser(prog="hpc_fed.bench.sequential", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", "-c")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--out", required=True)
    p.add_argument("overrides", nargs="*")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    ours = json_with("round_seconds", "share_in_trainer_train")  # an earlier result of this loop
    torch.set_num_threads(threads_per_rank(1))  # one process: every core, as a rank of one gets
    problem = replace_problem(Path(args.out), ours, what="--out")
    if problem:  # before minutes of training
        raise UsageError(problem)
    cfg = load_config(args.config, args.overrides)
    result = run(cfg, args.rounds)
    write_new_or_owned(Path(args.out), json.dumps(result, indent=2) + "\n", ours, what="--out")
    print(f"sequential loop: round {result['round_seconds']['median']} s (median); "
          f"{result['share_in_trainer_train']:.0%} inside trainer.train", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
