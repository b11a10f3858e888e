"""Host memory of an epoch over many full-size images: the decoded-image cache is bounded by
`data.image_cache_mb`, not by the dataset.

    python -m hpc_fed.bench.images --model DIR [--images 10000] [--size 512] [--cache-mb 256 1024]

Writes --images random JPEGs of --size x --size pixels (a photo dataset's shape: Hateful Memes,
CrisisMMD) into a temporary folder, then runs the training collation over all of them in
micro-batches of 16, once per cache bound, each in a fresh process, and prints this process's
resident memory (VmRSS) every 1,000 images as JSON lines.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def write_images(folder: Path, count: int, size: int) -> list[str]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = folder / f"{i}.jpg"
        if not path.exists():
            small = rng.integers(0, 255, (size // 16, size // 16, 3), dtype=np.uint8)
            Image.fromarray(small).resize((size, size)).save(path, quality=85)
        paths.append(str(path))
    return paths


def epoch(model: str, folder: str, cache_mb: int) -> list[dict]:
    from hpc_fed.bench.stats import status_bytes
    from hpc_fed.data.collate import Collator
    from hpc_fed.data.records import Record
    from hpc_fed.model.config import ModelConfig
    from hpc_fed.model.loading import load_processor

    collator = Collator(load_processor(ModelConfig(path=model)), image_cache_mb=cache_mb)
    paths = sorted(Path(folder).glob("*.jpg"), key=lambda p: int(p.stem))
    records = [Record(id=str(i), question="what shape is in the image?", answer="circle",
                      options=("circle", "triangle"), image=str(p)) for i, p in enumerate(paths)]
    def rss_mb() -> int:
        return round(status_bytes("VmRSS") / 2**20)

    rows = [{"images": 0, "rss_mb": rss_mb()}]
    for start in range(0, len(records), 16):
        collator.train_batch(records[start:start + 16])
        done = start + 16
        if done % 1000 < 16 or done >= len(records):
            rows.append({"images": min(done, len(records)), "rss_mb": rss_mb(),
                         "cache_mb": round(collator.images.bytes / 2**20)})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="hpc_fed.bench.images", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--images", type=int, default=10000)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--cache-mb", type=int, nargs="+", default=[256])
    p.add_argument("--folder", help="reuse (or fill) this folder of images")
    p.add_argument("--epoch-of", help=argparse.SUPPRESS)  # child: one epoch over this folder
    args = p.parse_args(argv)
    if args.epoch_of:
        for row in epoch(args.model, args.epoch_of, args.cache_mb[0]):
            print(json.dumps(row), flush=True)
        return 0
    folder = Path(args.folder or tempfile.mkdtemp(prefix="hpc-fed-images-"))
    folder.mkdir(parents=True, exist_ok=True)
    write_images(folder, args.images, args.size)
    for mb in args.cache_mb:
        print(json.dumps({"cache_mb_bound": mb, "images": args.images, "size": args.size}), flush=True)
        subprocess.run([sys.executable, "-m", "hpc_fed.bench.images", "--model", args.model,
                        "--epoch-of", str(folder), "--cache-mb", str(mb)], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
