"""Host memory of a dataset's index: records held as Python objects (a list of `Record`, as
as plain Python objects) against the same records in a `datasets` table (`RecordSet`),
and what a federated run does with them (a partition, a scenario's masks, a batch read).

    python -m hpc_fed.bench.records [--records 100000]

Each form is measured in a fresh process (resident memory after building minus before) on
Hateful-Memes-shaped records: an id, the question, a 2-option answer, a meme text of ~60
characters, an image path. Prints one JSON line per form.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import subprocess
import sys
import time


def build(form: str, count: int) -> dict:
    import numpy as np

    from hpc_fed.bench.stats import status_bytes
    from hpc_fed.data.records import Record, RecordSet
    from hpc_fed.data.scenarios import missing

    import datasets  # noqa: F401  (imported before the baseline: its code is not the data)
    import pyarrow

    texts = ["its their character not their color that matters", "look how many people love you",
             "when you're the only one who knows the answer", "don't be afraid to love again"]

    def make(lo: int, hi: int) -> list:
        return [Record(id=str(100000 + i), question="Is the content hateful?",
                       answer=("not-hateful", "hateful")[i % 2], options=("not-hateful", "hateful"),
                       image=f"/data/hateful_memes/img/{100000 + i:05d}.png",
                       text=f"{texts[i % 4]} #{i}") for i in range(lo, hi)]

    def settled() -> int:
        gc.collect()
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # give back what was freed: count what is held
        pyarrow.default_memory_pool().release_unused()
        return status_bytes("VmRSS")

    missing(RecordSet.concat([RecordSet.from_records(make(0, 2))] * 2), 0.3, 0)[0]  # code loaded
    before = settled()
    start = time.perf_counter()
    if form == "recordset":  # built 10,000 at a time, as a loader's table grows
        records = RecordSet.concat([RecordSet.from_records(make(lo, min(lo + 10_000, count)))
                                    for lo in range(0, count, 10_000)])
    else:
        records = make(0, count)
    built = time.perf_counter() - start
    held = settled()
    start = time.perf_counter()
    view = missing(records, 0.3, 0) if form == "recordset" else records
    part = np.random.default_rng(0).permutation(count)[:count // 10]
    batch = [view[int(i)] for i in part[:16]]
    used = time.perf_counter() - start
    table = {"arrow_mib": round(records.dataset.data.nbytes / 2**20, 1)} if form == "recordset" else {}
    return {"form": form, "records": count, "build_s": round(built, 3), **table,
            "index_mib": round((held - before) / 2**20, 1),
            "partition_scenario_batch_s": round(used, 4), "batch": len(batch)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hpc_fed.bench.records", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, default=100_000)
    p.add_argument("--form", choices=("list", "recordset"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.form:
        print(json.dumps(build(args.form, args.records)), flush=True)
        return 0
    for form in ("list", "recordset"):
        subprocess.run([sys.executable, "-m", "hpc_fed.bench.records", "--form", form,
                        "--records", str(args.records)], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
