#!/usr/bin/env bash
# Several nodes without SLURM: run this same command on every node; the nodes' torchrun agents
# meet at a c10d rendezvous on HEAD:PORT and form one world of NNODES x NPROC ranks (numbered in
# the order the agents join, so rank 0, which writes the run directory, may be on any node:
# give output.dir a shared filesystem). On SLURM use slurm/benchmark.sh instead.
#
#   NNODES=2 HEAD=host0 launchers/multi_node.sh configs/quickstart.yaml fed.rounds=20   # on each node
#
# Environment: NNODES (required), HEAD (a host every node reaches, e.g. the first node; default
# this host), PORT (free on HEAD, default 29500), NPROC (per node: its GPUs, else 2), RUN_ID
# (shared by the nodes, default hpc-fed-HEAD-PORT), HPC_FED_PYTHON. Multi-homed nodes: export
# NCCL_SOCKET_IFNAME / GLOO_SOCKET_IFNAME (see docs/clusters.md, "GPUs").
set -euo pipefail
if [[ $# -lt 1 || "$1" == -h || "$1" == --help || -z "${NNODES:-}" ]]; then
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2
fi
CONFIG=$1; shift
PY=${HPC_FED_PYTHON:-python}
HEAD=${HEAD:-$(hostname)}
PORT=${PORT:-29500}
NPROC=${NPROC:-$("$PY" -c 'from hpc_fed.distributed.backend import visible_gpus; print(visible_gpus() or 2)')}
exec "$PY" -m hpc_fed.cli launch --nnodes "$NNODES" --rdzv-endpoint "$HEAD:$PORT" \
    --rdzv-id "${RUN_ID:-hpc-fed-$HEAD-$PORT}" --nproc "$NPROC" --config "$CONFIG" "$@"
