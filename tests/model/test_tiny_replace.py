"""`hpc-fed make-tiny-model DIR --force` replaces a tiny model (its manifest says so) and nothing
else: a folder without the manifest is refused before the build, and left as it was."""

from __future__ import annotations

import json
import shutil

from cli_helpers import cli

from hpc_fed.tiny.model import MANIFEST


def test_force_refuses_a_folder_that_is_not_a_tiny_model(tmp_path):
    folder = tmp_path / "thesis"
    (folder / "chapters").mkdir(parents=True)
    (folder / "chapters" / "one.tex").write_text("mine")
    (folder / "config.json").write_text("{}")
    proc = cli("make-tiny-model", str(folder), "--force", "--prefit-steps", "0")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"hpc-fed make-tiny-model: error: {folder} is not a tiny model "
                                   f"hpc_fed built (it has no {MANIFEST}), and hpc_fed never replaces "
                                   "or removes such a folder; choose another folder, or move it away")
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) == [
        "chapters", "chapters/one.tex", "config.json"]
    assert (folder / "chapters" / "one.tex").read_text() == "mine"


def test_force_rebuilds_a_tiny_model_in_place(tiny_model_dir, tmp_path):
    model = tmp_path / "tiny"
    shutil.copytree(tiny_model_dir, model)
    assert json.loads((model / MANIFEST).read_text())["prefit"]["seed"] == 0
    proc = cli("make-tiny-model", str(model), "--force", "--prefit-steps", "0", "--seed", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((model / MANIFEST).read_text())["prefit"]["seed"] == 1
    assert not [p for p in tmp_path.iterdir() if p.name != "tiny"]  # no temporary folder left
