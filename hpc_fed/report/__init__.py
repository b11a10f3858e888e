"""`hpc-fed report`: benchmark tables (CSV, markdown) and plots from run directories.

  collect  find and read run dirs -> `Run` records (tags from results.json or config.yaml)
  tables   results.csv and results.md (the paper's layout, mean ± std over seeds)
  plots    curves_<dataset>_<setting>.png and scenarios_<dataset>.png
  cli      `main(argv) -> int`, prog "hpc-fed report" (also `python -m hpc_fed.report`)
"""

from hpc_fed.report.cli import main
from hpc_fed.report.collect import Collection, Incomplete, ReportError, Run, collect, derive_tags

__all__ = ["Collection", "Incomplete", "ReportError", "Run", "collect", "derive_tags", "main"]
