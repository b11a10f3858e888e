"""Starting runs: on this node or several with torchrun (node: `hpc-fed launch`), the entries of
a benchmark matrix (benchmark: `hpc-fed benchmark`; local runs them here for `hpc-fed benchmark
--local` and `hpc-fed sweep --executor local`), on SLURM (prepare: the first step of
slurm/benchmark.sh; sweep: submitit job arrays), and the checks they share before any process
starts (plan). Scripts users start by hand are in
launchers/; the SLURM batch script and a local test cluster are in slurm/."""
