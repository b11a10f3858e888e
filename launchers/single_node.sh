#!/usr/bin/env bash
# One node, N processes: `hpc-fed launch` (torchrun --standalone) after the config, layout and
# GPU checks, each of which stops in one line naming the fix before any process starts.
#
#   launchers/single_node.sh configs/quickstart.yaml                       # N: the GPUs, else 2
#   NPROC=4 launchers/single_node.sh configs/quickstart.yaml fed.ranks_per_client=2 train.zero_stage=3
#   NPROC=4 launchers/single_node.sh configs/quickstart.yaml distributed.device=cpu   # CPU on a GPU node
#
# Environment: NPROC (processes; default one per visible GPU, 2 without GPUs), HPC_FED_PYTHON
# (the interpreter, default python). Run from the repository root with the environment active.
set -euo pipefail
if [[ $# -lt 1 || "$1" == -h || "$1" == --help ]]; then
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2
fi
CONFIG=$1; shift
PY=${HPC_FED_PYTHON:-python}
NPROC=${NPROC:-$("$PY" -c 'from hpc_fed.distributed.backend import visible_gpus; print(visible_gpus() or 2)')}
exec "$PY" -m hpc_fed.cli launch --nproc "$NPROC" --config "$CONFIG" "$@"
