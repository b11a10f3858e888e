"""`hpc-fed eval`: evaluate a saved adapter (or the base model) on a config's test set, with the
same metrics and views as a run, sharded over --nproc ranks (torchrun, as `hpc-fed launch`).

  hpc-fed eval --adapter runs/quickstart/adapter                 # the run's own config.yaml
  hpc-fed eval --config configs/quickstart.yaml --adapter DIR data.max_test_samples=500
  hpc-fed eval --config configs/quickstart.yaml                  # the base model (zero LoRA update)

Without --config the adapter's run directory config (DIR/../config.yaml) is used, so the LoRA
settings match the adapter. Results go to results.json in output.dir (default runs/eval-<time>):
"final" holds the metrics (with the views of eval.modalities and a per-class report). output.dir
must be new, empty, or an earlier evaluation (which is replaced); a training run's directory, or
any folder hpc_fed did not write as an evaluation, is refused before anything starts.
"""

from __future__ import annotations

import argparse
import sys

from hpc_fed.errors import command


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hpc-fed eval", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", "-c", help="run config (default: the adapter's run config.yaml)")
    p.add_argument("--adapter", help="a saved adapter folder (a run's adapter/); none: the base model")
    p.add_argument("--nproc", type=int, default=1, help="ranks to shard the test set over (default 1)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. data.max_test_samples=500")
    return p


@command("hpc-fed eval")
def main(argv: list[str] | None = None) -> int:
    from hpc_fed.config import require_config
    from hpc_fed.launch.node import check, launch
    from hpc_fed.runs.rundir import split_output_dir

    args = build_parser().parse_intermixed_args(argv)
    config = require_config(args.config, "hpc-fed eval", args.adapter)
    out, rest = split_output_dir(args.overrides, "eval")
    overrides = rest + [
        "baseline=zero_shot", *([f"model.adapter={args.adapter}"] if args.adapter else []),
        "output.save_adapter=false", "output.kind=eval",  # never a run's directory (owned.py)
        "output.overwrite=true", "checkpoint.resume=false", f"output.dir={out}"]
    launch_args = argparse.Namespace(nproc=args.nproc, nnodes=1, rdzv_endpoint=None,
                                     rdzv_id="hpc-fed-eval", max_restarts=0, config=config,
                                     overrides=overrides)
    check(launch_args, "hpc-fed eval")
    return launch(launch_args, out, ["--config", config, *overrides], prog="hpc-fed eval")


if __name__ == "__main__":
    sys.exit(main())
