#!/usr/bin/env bash
# The GPU checks of hpc_fed's collectives, sized for one GPU and a few minutes.
#
#   tests/gpu/build_wheels.sh                     # here, once: .gpu-wheels/ (git-ignored)
#   device run: tests/gpu/gpu_checks.sh, carry [".gpu-wheels"], timeout ~480 s
#
# Every step runs with HPC_FED_STRICT_COLLECTIVES=1: a collective that bypasses
# hpc_fed.distributed.collectives, or hands a CPU tensor to nccl, fails the step. Logs, the
# run directories and a summary go to $OUT (the device tool's output folder) or runs/gpu.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/gpu}
mkdir -p "$OUT"
SUMMARY="$OUT/summary.txt"
if [[ -d .gpu-wheels ]] && python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))'; then
    python -m pip install -q --no-index --no-deps --target /tmp/hpc-fed-site .gpu-wheels/*.whl
    export PYTHONPATH="/tmp/hpc-fed-site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
export HPC_FED_STRICT_COLLECTIVES=1 TOKENIZERS_PARALLELISM=false
python - <<'PY' | tee "$SUMMARY"
import torch, transformers, deepspeed
nccl = torch.cuda.nccl.version() if torch.cuda.is_available() else None
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}, NCCL {nccl}), "
      f"transformers {transformers.__version__}, deepspeed {deepspeed.__version__}, "
      f"GPUs: {[torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]}")
PY
MODEL=runs/models/tiny-llava
read -r -a EXTRA <<< "${EXTRA:-}"  # extra overrides for every run (a quick dry run on the CPU)
step() {  # name, expected exit code, command...
    local name=$1 want=$2; shift 2
    local start=$SECONDS rc=0
    "$@" > "$OUT/$name.log" 2>&1 || rc=$?
    local verdict=ok; [[ $rc == "$want" ]] || verdict=FAILED
    echo "$name: $verdict (exit $rc, want $want, $((SECONDS - start)) s)" | tee -a "$SUMMARY"
    grep -hE "(accuracy|auc|macro_f1): initial|strict collectives|hpc-fed[a-z -]*: error|Error" "$OUT/$name.log" | tail -4 \
        | sed 's/^/    /' | tee -a "$SUMMARY"
}
# 0. build the tiny model once (its pre-fit is not what is measured)
step build_tiny 0 python -m hpc_fed.cli make-tiny-model "$MODEL" --force
# 1. the quickstart in a world of one under nccl (bf16): its collectives now really run, on the GPU
step quickstart_nccl_world1 0 python -m hpc_fed.cli launch --nproc 1 --config configs/quickstart.yaml \
    "model.path=$MODEL" "output.dir=$OUT/quickstart" ${EXTRA[@]+"${EXTRA[@]}"}
# 2. NCCL refuses two ranks on one GPU: refused before any process starts, one line
step refuse_2_nccl_ranks_on_1_gpu 2 python -m hpc_fed.cli launch --nproc 2 --config configs/quickstart.yaml \
    "model.path=$MODEL" "output.dir=$OUT/refused" ${EXTRA[@]+"${EXTRA[@]}"}
# 3. two ranks on the one GPU, gloo carrying the collectives: 2 client groups x 1 rank, ZeRO-2
step two_groups_gloo_cuda 0 python -m hpc_fed.cli launch --nproc 2 --config configs/quickstart.yaml \
    "model.path=$MODEL" distributed.device=cuda distributed.backend=gloo fed.rounds=2 eval.every=1 \
    data.max_test_samples=400 "output.dir=$OUT/gloo_groups" ${EXTRA[@]+"${EXTRA[@]}"}
# 4. one client group of two ranks under ZeRO-3 on the one GPU (gathers, trace check) over gloo
step zero3_group_gloo_cuda 0 python -m hpc_fed.cli launch --nproc 2 --config configs/quickstart.yaml \
    "model.path=$MODEL" distributed.device=cuda distributed.backend=gloo fed.ranks_per_client=2 \
    train.zero_stage=3 fed.rounds=2 eval.every=1 data.max_test_samples=400 "output.dir=$OUT/zero3_group" ${EXTRA[@]+"${EXTRA[@]}"}
# 5. ZeRO-3 partitioned loading on the GPU: parameter bytes, peak GPU memory and peak host memory
#    per rank after load + engine build, ZeRO-2 / ZeRO-3 / ZeRO-3 partitioned
step build_mid_model 0 python tests/gpu/zero3_memory.py --build runs/models/mid-llava --hidden 2048 --layers 8
step zero3_memory_cuda 0 python tests/gpu/zero3_memory.py --model runs/models/mid-llava --device cuda \
    --out "$OUT/zero3_memory.json"
grep -h '^{' "$OUT/zero3_memory_cuda.log" | tee -a "$SUMMARY"
for d in quickstart gloo_groups zero3_group; do
    [[ -f "$OUT/$d/results.json" ]] && python -c "import json,sys; r=json.load(open(sys.argv[1])); \
print(sys.argv[2], 'accuracy', r['initial'] and round(r['initial']['accuracy'], 4), '->', \
round(r['final']['accuracy'], 4), 'wall', r['wall_seconds'], 's')" "$OUT/$d/results.json" "$d" | tee -a "$SUMMARY"
done
rm -rf "$OUT"/*/adapter
! grep -q FAILED "$SUMMARY"
