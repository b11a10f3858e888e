"""`hpc-fed benchmark CONFIG`: list, print or run the entries of a benchmark matrix.

  hpc-fed benchmark --config configs/benchmark/offline.yaml --list          # index, done?, name
  hpc-fed benchmark --config configs/benchmark/offline.yaml --local         # run every entry not done
  hpc-fed benchmark --config configs/benchmark/offline.yaml --only 'claims/missing-*/FedAvg/*' --dry-run
  hpc-fed benchmark --config configs/benchmark/offline.yaml --index 17      # one entry (a job array task)

An entry is done when <run_dir>/results.json exists; done entries are skipped unless --force.
Indices are stable for a given matrix file (see hpc_fed/benchmark/matrix.py).
"""

from __future__ import annotations

import argparse
import sys

from hpc_fed.benchmark.matrix import expand, listing, select
from hpc_fed.errors import UsageError, command
from hpc_fed.launch import local


def build_parser() -> argparse.ArgumentParser:
    from hpc_fed.config import add_config_argument

    p = argparse.ArgumentParser(prog="hpc-fed benchmark", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_argument(p, "benchmark matrix YAML (see configs/benchmark/)")
    p.add_argument("--local", action="store_true",
                   help="run the selected entries here, --jobs at a time (the default action)")
    p.add_argument("--list", action="store_true", help="print the entries (index, done?, name) and exit")
    p.add_argument("--index", type=int, metavar="I", help="only entry I (0-based, as in --list)")
    p.add_argument("--only", metavar="GLOB", help="only entries whose name matches (fnmatch), "
                   "e.g. 'claims/*/FedAvg/*'")
    p.add_argument("--dry-run", action="store_true", help="print the commands instead of running them")
    p.add_argument("--nproc", type=int, metavar="N", help="processes per entry (default: the matrix's nproc)")
    p.add_argument("--jobs", type=int, metavar="J", help="entries run at once by --local "
                   "(default: the matrix's jobs); cores are shared out between them")
    p.add_argument("--force", action="store_true", help="rerun entries that are already done")
    return p


@command("hpc-fed benchmark")
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from hpc_fed.config import config_argument

    parser = build_parser()
    args = parser.parse_args(argv)
    args.config = config_argument(args, parser)
    if args.nproc is not None and args.nproc < 1:
        parser.error(f"--nproc ({args.nproc}) must be >= 1")
    if args.jobs is not None and args.jobs < 1:
        parser.error(f"--jobs ({args.jobs}) must be >= 1")
    matrix = expand(args.config)
    n = len(matrix.entries)
    if args.index is not None and not 0 <= args.index < n:
        raise UsageError(f"--index {args.index} is out of range: {args.config} has {n} entries "
                         f"(0..{n - 1}); see --list")
    entries = select(matrix.entries, args.only, args.index)
    if not entries:
        raise UsageError(f"no entry of {args.config} matches --only {args.only!r}"
                         + (f" and --index {args.index}" if args.index is not None else "") + "; see --list")
    nproc = args.nproc or matrix.nproc
    if args.list:
        print(listing("benchmark", matrix, entries, f", {nproc} process(es) each"))
        return 0
    if args.dry_run:
        for e in entries:
            if e.done and not args.force:
                print(f"# [{e.index}] {e.name}: done, skipped")
            else:
                print(f"# [{e.index}] {e.name}")
                print(local.shell_line(e, matrix.base, nproc))
        return 0
    return local.run_local(matrix, entries, nproc=nproc, force=args.force, jobs=args.jobs).exit_code


if __name__ == "__main__":
    sys.exit(main())
