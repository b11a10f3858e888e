#!/usr/bin/env bash
# A benchmark matrix as a submitit sweep: one SLURM job array (when srun is on PATH, or with
# --executor slurm), or the entries one after another here (--executor local). Entries already
# done are skipped; without --detach it waits and writes the collected table to
# <output_root>/report. All options: `hpc-fed sweep --help`.
#
#   launchers/sweep.sh --config configs/benchmark/offline.yaml --list
#   launchers/sweep.sh --config configs/benchmark/offline.yaml --partition gpu --tasks-per-node 4 --gpus-per-node 4
#   launchers/sweep.sh --config configs/benchmark/smoke.yaml --executor local
#
# Environment: HPC_FED_PYTHON (the interpreter, default python). Submit from the repository
# root with the environment active (SLURM jobs inherit it).
set -euo pipefail
if [[ $# -lt 1 || "$1" == -h || "$1" == --help ]]; then
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2
fi
exec "${HPC_FED_PYTHON:-python}" -m hpc_fed.cli sweep "$@"
