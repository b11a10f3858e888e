"""Entry point of every run: `torchrun --nproc_per_node N -m hpc_fed.train --config C k=v`.

Without torchrun it runs as a world of one. The config is loaded and checked before any process
group exists (a wrong key fails in a second, in one line); then the kind of run that `baseline`
names (hpc_fed/runs/) runs on the topology of client groups.
"""

from __future__ import annotations

import argparse
import logging
import os

from torch.distributed.elastic.multiprocessing.errors import record

from hpc_fed.config import client_group_size, load_config, require_config
from hpc_fed.distributed import build_topology, exit_process, init_distributed, shutdown
from hpc_fed.errors import command
from hpc_fed.runs import run_class
from hpc_fed.runtime.logs import setup_logging
from hpc_fed.runtime.stop import stop_exit_code

log = logging.getLogger("hpc_fed")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="hpc-fed train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", "-c", help="YAML config (see configs/)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. fed.rounds=3")
    return p.parse_args(argv)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


@record
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return _run(args)
    finally:
        summary = shutdown()
        if summary:
            log.info("%s", summary)


@command("hpc-fed train")
def _run(args: argparse.Namespace) -> int:
    cfg = load_config(require_config(args.config, "hpc-fed train"), args.overrides)  # fail fast
    choice = init_distributed(cfg.distributed)
    setup_logging(int(os.environ["RANK"]))
    topo = build_topology(client_group_size(cfg, int(os.environ["WORLD_SIZE"])), choice)
    log.info("%s%s", topo.describe(), "" if cfg.baseline == "none" else f"; baseline {cfg.baseline}")
    runner = run_class(cfg.baseline)(cfg, topo)
    try:
        outcome = runner.run()
    except Exception as exc:
        if not runner.stop.requested():
            raise
        # A peer left first while the run was stopping (its stop deadline passed): not a crash.
        runner.abandoned(f"{runner.stop.reason}; a peer rank left first "
                         f"({_first_line(exc)})")
        log.warning("stopping (%s): a peer rank left before the round ended", runner.stop.reason)
        return stop_exit_code()
    finally:
        runner.close()
    if "stopped_after_round" in outcome:
        return stop_exit_code()
    return 0


if __name__ == "__main__":
    # `record` turns argparse's SystemExit(0) (--help) into None
    exit_process(main() or 0)  # not sys.exit: see exit_process
