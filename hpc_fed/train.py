"""Entry point of every run: `torchrun --nproc_per_node N -m hpc_fed.train --config C k=v`.

Without torchrun it runs as a world of one. The config is loaded and checked before any process
group exists (a wrong key fails in a second, in one line); then the kind of run that `baseline`
names (hpc_fed/runs/) runs on the topology of client groups.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from torch.distributed.elastic.multiprocessing.errors import record

from hpc_fed.config import load_config
from hpc_fed.distributed import build_topology, init_distributed, shutdown
from hpc_fed.errors import HpcFedError
from hpc_fed.runs import client_group_size, run_class

log = logging.getLogger("hpc_fed")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="hpc-fed train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", "-c", help="YAML config (see configs/)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. fed.rounds=3")
    return p.parse_args(argv)


def setup_logging(rank: int) -> None:
    level = logging.INFO if rank == 0 else logging.WARNING
    logging.basicConfig(level=level, format=f"[rank {rank}] %(asctime)s %(message)s",
                        datefmt="%H:%M:%S", force=True)
    for noisy in ("DeepSpeed", "deepspeed", "torch.distributed", "transformers", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


@record
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides)  # before any process group: fail fast
        choice = init_distributed(cfg.distributed)
        setup_logging(int(os.environ["RANK"]))
        topo = build_topology(client_group_size(cfg, int(os.environ["WORLD_SIZE"])), choice)
        log.info("%s%s", topo.describe(), "" if cfg.baseline == "none" else f"; baseline {cfg.baseline}")
        run_class(cfg.baseline)(cfg, topo).run()
    except HpcFedError as exc:
        print(f"hpc-fed: error: {exc}", file=sys.stderr)
        return 2
    finally:
        summary = shutdown()
        if summary:
            log.info("%s", summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
