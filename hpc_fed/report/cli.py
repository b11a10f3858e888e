"""`hpc-fed report RUN_DIRS... --out DIR`: tables and plots from finished run directories."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hpc_fed.errors import UsageError, command
from hpc_fed.report.collect import collect
from hpc_fed.report.tables import WRITTEN, by_dataset, condition_warnings, markdown_report, write_csv
from hpc_fed.runtime.owned import replace_problem

DESCRIPTION = """\
Collect finished runs (directories holding results.json; a folder is searched recursively) and
write into --out: results.csv (one row per run), results.md (per dataset, the paper's table:
methods x settings grouped by scenario, mean ± std over seeds, best FL method in bold, plus a
robustness table when runs scored no_image/no_text views) and PNG plots (curves_<dataset>_<setting>.png,
scenarios_<dataset>.png). Runs are labelled by results.json's tags, or from config.yaml when absent.
A file of one of these names already in --out is replaced only when hpc-fed report wrote it.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hpc-fed report", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                   help="run directories, or folders searched recursively for results.json")
    p.add_argument("--out", "-o", required=True, help="output folder (created if missing)")
    p.add_argument("--metric", help="metric for tables and plots (default: each dataset's primary "
                                    "metric from results.json, else accuracy), e.g. accuracy, macro_f1")
    p.add_argument("--no-plots", action="store_true", help="write results.csv and results.md only")
    return p


@command("hpc-fed report")
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    col = collect(args.run_dirs)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create --out {out}: {exc}") from exc
    written = [out / name for name in WRITTEN]
    problems = [p for path in written if (p := replace_problem(path, WRITTEN[path.name], what="--out file"))]
    if problems:
        raise UsageError(problems[0])
    write_csv(col, written[0])
    written[1].write_text(markdown_report(col, args.metric))
    if not args.no_plots:
        from hpc_fed.report.plots import write_plots

        written += write_plots(col.runs, out, args.metric)
    datasets = by_dataset(col.runs)
    print(f"runs found: {len(col.runs)} ({len(datasets)} dataset(s): {', '.join(datasets)})"
          + (f"; {len(col.superseded)} superseded by newer identical-tag runs" if col.superseded else ""))
    print(f"incomplete: {len(col.incomplete)}")
    for inc in col.incomplete:
        print(f"  {inc.path}: {inc.reason}")
    for warning in condition_warnings(col.runs):
        print(f"warning: {warning} (results.md: Conditions)", file=sys.stderr)
    if args.metric and not any(r.value(args.metric) is not None for r in col.runs):
        print(f"warning: no run has the metric {args.metric!r}; tables are empty", file=sys.stderr)
    print(f"wrote {len(written)} file(s) to {out}:")
    for p in written:
        print(f"  {p.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
