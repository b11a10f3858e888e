#!/bin/bash
# hpc_fed on SLURM: one torchrun agent per node (srun), c10d rendezvous on the first node.
#
#   sbatch slurm/benchmark.sh                                     # configs/quickstart.yaml, 1 node
#   sbatch slurm/benchmark.sh fed.rounds=3 'eval.modalities=[full, no_text]'   # overrides as arguments
#   CONFIG=configs/my_run.yaml OVERRIDES="fed.rounds=20" sbatch --nodes=4 slurm/benchmark.sh
#   CONFIG=configs/benchmark/offline.yaml sbatch --array=0-313 slurm/benchmark.sh   # one entry per task
#   hpc-fed sweep --list --config configs/benchmark/offline.yaml           # the array indices
#
# Submit from the repository root with the Python environment active (sbatch passes the
# environment on). Environment knobs:
#   CONFIG           run config or benchmark matrix (default configs/quickstart.yaml)
#   OVERRIDES        extra key=value overrides, space separated (script arguments keep their quoting)
#   NPROC_PER_NODE   processes per node (default: the GPUs SLURM gave the node, else 2 CPU processes)
#   RDZV_PORT        rendezvous port on the first node (default 29500 + job id mod 1000)
#   FORCE=1          rerun a matrix entry whose results.json exists (default: skip it)
#   MAX_RESTARTS     restart the workers from the last checkpoint when one dies (torchrun; default 0)
#   REQUEUE=1        after a clean stop before the time limit, requeue this job (scontrol requeue);
#                    the requeued job continues from the checkpoint once SLURM makes it eligible
#                    again (about 2 minutes later) (default: exit 75, resubmit by hand)
#   HPC_FED_PYTHON   the interpreter (default: python on PATH)
#   NCCL_SOCKET_IFNAME, GLOO_SOCKET_IFNAME   the network interface on multi-homed nodes (e.g. ib0)
#
# World = nodes x NPROC_PER_NODE ranks, numbered node after node; client groups take consecutive
# ranks, so a group never spans nodes when fed.ranks_per_client divides NPROC_PER_NODE (a layout
# that would split groups unevenly is refused before anything starts). GPUs: backend nccl, one
# GPU per rank (more ranks than GPUs is refused by `hpc-fed prepare`); CPU-only partitions:
# backend gloo (chosen per rank by hpc_fed/distributed/backend.py; distributed.device=cpu forces it).
#
# Defaults below are for one node; override any of them on the sbatch command line.
#SBATCH --job-name=hpc-fed
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1           # one torchrun agent per node; it starts NPROC_PER_NODE ranks
#SBATCH --cpus-per-task=2             # raise on real nodes (e.g. 8 per GPU for data loading)
##SBATCH --gpus-per-node=8            # uncomment on GPU partitions
#SBATCH --time=01:00:00
#SBATCH --output=slurm/logs/%x-%j.out # one log per job (array tasks get their own job id)
#SBATCH --signal=B:USR2@180           # 3 min before the limit: stop after the current round (raise it
                                      # when one round, with its evaluation, takes longer)
set -euo pipefail

PY=${HPC_FED_PYTHON:-python}
CONFIG=${CONFIG:-configs/quickstart.yaml}
read -r -a EXTRA <<< "${OVERRIDES:-}"
EXTRA+=("$@")
NNODES=${SLURM_NNODES:-1}
GPUS=${SLURM_GPUS_ON_NODE:-0}
if [[ -z "${NPROC_PER_NODE:-}" ]]; then
    if [[ "$GPUS" =~ ^[0-9]+$ ]] && (( GPUS > 0 )); then NPROC_PER_NODE=$GPUS; else NPROC_PER_NODE=2; fi
fi
JOB=${SLURM_JOB_ID:-$$}
echo "hpc-fed: job $JOB on ${SLURM_JOB_NODELIST:-$(hostname)}: $NNODES node(s) x $NPROC_PER_NODE process(es); config $CONFIG${SLURM_ARRAY_TASK_ID:+, array task $SLURM_ARRAY_TASK_ID}"

# Resolve and validate on the batch node first: a wrong path, a bad override or a world that
# fed.ranks_per_client does not divide fails here in seconds, with the fix in the message.
PREP=(prepare --config "$CONFIG" --nnodes "$NNODES" --nproc-per-node "$NPROC_PER_NODE")
[[ -n "${SLURM_ARRAY_TASK_ID:-}" ]] && PREP+=(--index "$SLURM_ARRAY_TASK_ID")
[[ "${FORCE:-0}" == 1 ]] && PREP+=(--force)
rc=0
PLAN=$("$PY" -m hpc_fed.cli "${PREP[@]}" ${EXTRA[@]+"${EXTRA[@]}"}) || rc=$?
if (( rc == 3 )); then echo "hpc-fed: nothing to do (already done)"; exit 0; fi
if (( rc != 0 )); then echo "hpc-fed: the job stops before starting any process (exit $rc)" >&2; exit "$rc"; fi
eval "$PLAN"   # sets HPC_FED_NAME, HPC_FED_RUN_DIR and HPC_FED_TRAIN_ARGS

# The batch shell runs on the first node of the allocation: the rendezvous host; a port that
# is free there now (two jobs sharing a node must not meet at the same one).
HEAD=$(hostname)
PORT=${RDZV_PORT:-$("$PY" -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])')}
mkdir -p "${SLURM_SUBMIT_DIR:-$PWD}/slurm/logs"
export HPC_FED_STOP_FILE="${SLURM_SUBMIT_DIR:-$PWD}/slurm/logs/.stop-$JOB"
rm -f "$HPC_FED_STOP_FILE"
# gloo on CPU: the task's CPUs shared out over its ranks; NCCL: fail loudly instead of hanging.
CPUS=${SLURM_CPUS_PER_TASK:-$NPROC_PER_NODE}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( CPUS / NPROC_PER_NODE > 0 ? CPUS / NPROC_PER_NODE : 1 ))}
export TORCH_NCCL_ASYNC_ERROR_HANDLING=${TORCH_NCCL_ASYNC_ERROR_HANDLING:-1}
export NCCL_DEBUG=${NCCL_DEBUG:-WARN}
trap 'echo "hpc-fed: SIGUSR2 (time limit near): stopping after the current round"; touch "$HPC_FED_STOP_FILE" || true' USR2

echo "hpc-fed: $HPC_FED_NAME; rendezvous $HEAD:$PORT"
# Explicit step shape: one agent per node whatever --ntasks-per-node the job was given, and the
# job's CPUs per task (srun stopped inheriting --cpus-per-task from sbatch in SLURM 22.05).
STEP=(--nodes="$NNODES" --ntasks="$NNODES" --ntasks-per-node=1 --kill-on-bad-exit=1)
[[ -n "${SLURM_CPUS_PER_TASK:-}" ]] && STEP+=(--cpus-per-task="$SLURM_CPUS_PER_TASK")
srun "${STEP[@]}" \
    "$PY" -m torch.distributed.run \
    --nnodes "$NNODES" --nproc-per-node "$NPROC_PER_NODE" \
    --rdzv-backend c10d --rdzv-endpoint "$HEAD:$PORT" --rdzv-id "hpc-fed-$JOB" \
    --max-restarts "${MAX_RESTARTS:-0}" \
    -m hpc_fed.train "${HPC_FED_TRAIN_ARGS[@]}" &
SRUN=$!
# `wait` returns early (status > 128) when the USR2 trap runs; keep waiting for srun itself.
rc=0
while true; do
    wait "$SRUN" && rc=0 || rc=$?
    if (( rc > 128 )) && kill -0 "$SRUN" 2>/dev/null; then continue; fi
    break
done
rm -f "$HPC_FED_STOP_FILE"
# A clean stop (this script's USR2, or a signal that reached a worker) leaves stopped.json and no
# results.json; torchrun's workers exit 0 then (a non-zero exit would make it restart them).
STOPPED=0
if (( rc == 0 )) && [[ -f "$HPC_FED_RUN_DIR/stopped.json" && ! -f "$HPC_FED_RUN_DIR/results.json" ]]; then
    STOPPED=1
fi
if (( STOPPED )); then
    # not done: a non-zero code so SLURM does not call it COMPLETED
    if [[ "${REQUEUE:-0}" == 1 && -n "${SLURM_JOB_ID:-}" ]]; then
        echo "hpc-fed: stopped cleanly before the time limit; requeueing job $SLURM_JOB_ID (REQUEUE=1): it continues from its checkpoint"
        scontrol requeue "$SLURM_JOB_ID"
    else
        echo "hpc-fed: stopped cleanly before the time limit; resubmit to run it again (exit 75)"
    fi
    exit 75
fi
echo "hpc-fed: finished with exit code $rc"
exit "$rc"
