"""Benchmark matrices: a YAML of datasets x scenario settings x methods (+ baselines) x seeds.

  matrix.expand(path) -> Matrix      validated, ordered entries with stable 0-based indices
  matrix.select / format_table       --only / --index filtering and the --list table
The command `hpc-fed benchmark CONFIG [--local|--list|--index I] ...` is hpc_fed/launch/benchmark.py;
entries run here through hpc_fed/launch/local.py, on SLURM through hpc_fed/launch/.
"""

from hpc_fed.benchmark.matrix import Entry, Matrix, expand, format_table, select

__all__ = ["Entry", "Matrix", "expand", "format_table", "select"]
