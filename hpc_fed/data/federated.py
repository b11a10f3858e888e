"""The federated view of a dataset: load -> partition over clients -> apply the scenario.

A pure function of the data config and the number of clients, so every rank builds the same
thing, and `hpc-fed data describe` shows it without training.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from hpc_fed.data.config import DataConfig
from hpc_fed.data.partition import partition, source_partition
from hpc_fed.data.records import RecordSet
from hpc_fed.data.registry import dataset_spec, load_splits
from hpc_fed.data.scenarios import apply_scenario, modality_counts
from hpc_fed.data.images import bad_images
from hpc_fed.errors import ConfigError, DataFormatError


@dataclass
class FederatedData:
    train: RecordSet  # after the scenario (modalities removed)
    test: RecordSet  # as published: full modality
    parts: list[list[int]]  # client -> indices into train
    primary_metric: str
    scenario: dict = field(default_factory=dict)  # what the scenario drew
    skipped: list[dict] = field(default_factory=list)  # data.on_error=skip: what was left out

    @property
    def sizes(self) -> list[int]:
        return [len(p) for p in self.parts]


def build_federated_data(cfg: DataConfig, num_clients: int) -> FederatedData:
    spec = dataset_spec(cfg.name)
    train, test, parts = load_splits(cfg)
    where = f"data.name={cfg.name}" + (f" in {cfg.root}" if cfg.root else "")
    for split, records in (("training", train), ("test", test)):
        if not records:
            raise ConfigError(f"{where}: the {split} split has no samples; check the dataset's "
                              f"{split} file (or data.max_{'train' if split == 'training' else 'test'}"
                              "_samples)")
    if num_clients > len(train):
        raise ConfigError(f"fed.num_clients ({num_clients}) exceeds the {len(train)} training samples "
                          f"of {where}; lower fed.num_clients or use more data (data.max_train_samples)")
    if parts is None and cfg.partition == "source":
        sources = [i.split("-", 1)[0] for i in train.column("id")]
        parts = source_partition(sources, spec.sources, [cfg.k, num_clients - cfg.k], cfg.seed)
    elif parts is None:
        parts = partition(train.column("answer"), num_clients, cfg.partition, cfg.alpha, cfg.seed)
    elif len(parts) != num_clients:
        raise ConfigError(f"fed.num_clients ({num_clients}) differs from the {len(parts)} client "
                          f"files of data.name={cfg.name} in {cfg.root}; set fed.num_clients={len(parts)}")
    train, info = apply_scenario(train, parts, cfg.scenario, cfg.beta, cfg.k, cfg.p, cfg.seed)
    data = FederatedData(train, test, parts, spec.primary_metric, info)
    drop_unreadable_images(data, cfg)
    return data


def drop_unreadable_images(data: FederatedData, cfg: DataConfig) -> None:
    """Check every image once (hpc_fed/data/images.py): raise naming the first bad file, or with
    data.on_error=skip drop its samples from their client / the test set and note them."""
    bad = bad_images(RecordSet.concat([data.train, data.test]))
    if not bad:
        return
    train_ids, train_images = data.train.column("id"), data.train.column("image")
    test_ids, test_images = data.test.column("id"), data.test.column("image")
    first = next((i, im) for i, im in (*zip(train_ids, train_images), *zip(test_ids, test_images))
                 if im in bad)
    if cfg.on_error != "skip":
        raise DataFormatError(f"image {first[1]} (record {first[0]!r}) cannot be read "
                              f"({bad[first[1]]}); {len(bad)} image file(s) of data.name={cfg.name} "
                              "fail like this: fix or remove them, or set data.on_error=skip to "
                              "leave those samples out")
    for c, part in enumerate(data.parts):
        data.skipped += [{"id": train_ids[i], "client": c, "image": train_images[i],
                          "error": bad[train_images[i]]} for i in part if train_images[i] in bad]
        data.parts[c] = [i for i in part if train_images[i] not in bad]
    data.skipped += [{"id": i, "client": "test", "image": im, "error": bad[im]}
                     for i, im in zip(test_ids, test_images) if im in bad]
    data.test = data.test.select([k for k, im in enumerate(test_images) if im not in bad])
    empty = [c for c, p in enumerate(data.parts) if not p]
    if empty or not data.test:
        what = f"client(s) {empty}" if empty else "the test set"
        raise DataFormatError(f"data.on_error=skip left {what} with no samples ({len(bad)} unreadable "
                              f"image file(s), e.g. {first[1]})")


def check_scorable(data: FederatedData, mode: str) -> None:
    """Option scoring needs options: fail before training, not at the first evaluation."""
    if mode == "scoring":
        for records in (data.test, data.train):
            for record_id, options in zip(records.column("id"), records.column("options")):
                if not options:
                    raise ConfigError(f"record {record_id!r} of the data is open-ended (no options); "
                                      "option scoring cannot score it: set eval.mode=generation")


def partition_summary(data: FederatedData, cfg: DataConfig) -> dict:
    """The partition.json object: per client the sample ids, modality counts, label histogram."""
    clients = []
    answers, ids = data.train.column("answer"), data.train.column("id")
    for c, idx in enumerate(data.parts):
        hist = Counter(answers[i] for i in idx)
        clients.append({"client": c, "samples": len(idx),
                        "skipped": sum(1 for s in data.skipped if s["client"] == c),
                        "modalities": modality_counts(data.train, idx),
                        "labels": dict(sorted(hist.items())),
                        "ids": [ids[i] for i in idx]})
    return {"dataset": cfg.name, "scheme": cfg.partition, "alpha": cfg.alpha, "seed": cfg.seed,
            **data.scenario, "train_samples": len(data.train), "test_samples": len(data.test),
            "primary_metric": data.primary_metric,
            "skipped": {"train": sum(1 for s in data.skipped if s["client"] != "test"),
                        "test": sum(1 for s in data.skipped if s["client"] == "test")},
            "clients": clients}


def describe_table(summary: dict) -> str:
    """A console table of partition.json (no ids)."""
    head = (f"{summary['dataset']}: {summary['train_samples']} train / {summary['test_samples']} "
            f"test samples; partition {summary['scheme']}"
            + (f" alpha={summary['alpha']}" if summary["scheme"] == "dirichlet" else "")
            + f"; scenario {summary['scenario']}"
            + "".join(f" {k}={summary[k]}" for k in ("beta", "k", "p") if k in summary))
    labels = sorted({lab for c in summary["clients"] for lab in c["labels"]})
    cols = ["client", "samples", "both", "image", "text", "neither", *labels]
    rows = [[str(c["client"]), str(c["samples"]), str(c["modalities"]["both"]),
             str(c["modalities"]["image_only"]), str(c["modalities"]["text_only"]),
             str(c["modalities"]["neither"]), *(str(c["labels"].get(lab, 0)) for lab in labels)]
            for c in summary["clients"]]
    widths = [max(len(x) for x in col) for col in zip(cols, *rows)]
    fmt = "  ".join(f"{{:>{w}}}" for w in widths)
    lines = [head, fmt.format(*cols), *(fmt.format(*r) for r in rows)]
    skipped = summary.get("skipped", {})
    if any(skipped.values()):
        lines.append(f"left out (unreadable images, data.on_error=skip): {skipped['train']} training "
                     f"sample(s), {skipped['test']} test sample(s)")
    if "image_only_clients" in summary:
        lines.append(f"image-only clients: {summary['image_only_clients']} (the others text-only)")
    return "\n".join(lines)
