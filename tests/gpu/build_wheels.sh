#!/usr/bin/env bash
# Wheels the GPU machine's image lacks (see shared/FACTS.md, "GPU machine": Python 3.12 with
# torch, transformers, peft, accelerate, pillow, numpy, pyyaml, ... but no deepspeed, omegaconf,
# easy-vqa, submitit, pydantic, hjson), built here into .gpu-wheels/ (git-ignored) so the
# device tool can carry them: run(command="tests/gpu/gpu_checks.sh", carry=[".gpu-wheels"]).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=.gpu-wheels
rm -rf "$OUT" && mkdir -p "$OUT"
# DeepSpeed is only an sdist on PyPI: build a py3-none-any wheel without its dependencies.
python -m pip wheel -q --no-deps -w "$OUT" "deepspeed==0.19.8"
# Pure-Python or cp312 manylinux wheels; pydantic pulls the pydantic-core it pins.
python -m pip download -q -d "$OUT" --python-version 3.12 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --only-binary=:all: --no-deps \
    "omegaconf==2.4.*" easy-vqa submitit hjson py-cpuinfo msgpack ninja psutil einops cloudpickle \
    annotated-types typing-inspection typing-extensions
python -m pip download -q -d "$OUT" --python-version 3.12 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --only-binary=:all: --no-deps pydantic
core=$(unzip -p "$OUT"/pydantic-*.whl '*/METADATA' | sed -n 's/^Requires-Dist: pydantic-core\s*\(==[^ ;]*\).*/\1/p')
python -m pip download -q -d "$OUT" --python-version 3.12 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --only-binary=:all: --no-deps "pydantic-core${core}"
du -sh "$OUT"
ls "$OUT"
