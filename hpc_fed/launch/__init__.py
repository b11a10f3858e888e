"""Launching on clusters: resolve and check a launch (plan), the SLURM script's first step
(prepare), and submitit sweeps of a benchmark matrix (sweep). The job script is slurm/benchmark.sh."""
