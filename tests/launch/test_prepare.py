"""`hpc-fed prepare` (what slurm/benchmark.sh evals, its exit codes) and the SLURM script's shape."""

from __future__ import annotations

import subprocess
import sys

from cli_helpers import QUICK, ROOT, SMOKE, cli, tiny_matrix

from hpc_fed.runtime.owned import claim


def test_prepare_output_evals_to_the_train_arguments(tmp_path):
    script = ('set -euo pipefail; eval "$(' + f"{sys.executable} -m hpc_fed.cli prepare {SMOKE} "
              '--index 2 --nproc-per-node 2 \'eval.modalities=[full, no_text]\')"; '
              'printf "%s\\n" "$HPC_FED_NAME" "${HPC_FED_TRAIN_ARGS[@]}"')
    proc = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "memes/missing-beta0.5/FedAvg+prompt/seed0"
    assert lines[1:3] == ["--config", "configs/benchmark/offline_base.yaml"]
    assert "data.prompt=modality_agnostic" in lines and lines[-1] == "eval.modalities=[full, no_text]"
    assert "2 client group(s)" in proc.stderr


def test_prepare_exit_codes(tmp_path, tiny_model_dir):
    bad = cli("prepare", "configs/nope.yaml")
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr
    world = cli("prepare", QUICK, "fed.ranks_per_client=4", "--nproc-per-node", "2")
    assert world.returncode == 2 and "fed.ranks_per_client (4) does not divide" in world.stderr
    typo = cli("prepare", QUICK, "fed.rnds=3")
    assert typo.returncode == 2 and "fed.rnds" in typo.stderr
    model = cli("prepare", QUICK, f"model.path={tmp_path / 'nowhere'}")  # before any srun
    assert model.returncode == 2 and "does not exist" in model.stderr
    m = tiny_matrix(tmp_path, tiny_model_dir)
    done = tmp_path / "bench/memes/missing-beta0.5/FedAvg/seed0/results.json"
    claim(done.parent, "run", what="output.dir")  # a finished run directory hpc_fed wrote
    done.write_text("{}")
    skip = cli("prepare", str(m), "--index", "0")
    assert skip.returncode == 3 and "already done" in skip.stderr
    assert cli("prepare", str(m), "--index", "0", "--force").returncode == 0


def test_slurm_script_shape():
    """The directives a cluster user relies on, and a syntax check of the whole script."""
    text = (ROOT / "slurm/benchmark.sh").read_text()
    directives = [line.split()[1] for line in text.splitlines() if line.startswith("#SBATCH")]
    assert directives[:3] == ["--job-name=hpc-fed", "--nodes=1", "--ntasks-per-node=1"]
    assert "--signal=B:USR2@180" in directives and "--output=slurm/logs/%x-%j.out" in directives
    for needle in ("--rdzv-backend c10d", 'hpc_fed.cli "${PREP[@]}"', "--kill-on-bad-exit=1",
                   "HPC_FED_STOP_FILE", "SLURM_ARRAY_TASK_ID"):
        assert needle in text
    assert subprocess.run(["bash", "-n", str(ROOT / "slurm/benchmark.sh")]).returncode == 0
    assert (ROOT / "slurm/logs").is_dir()  # sbatch does not create the --output directory
