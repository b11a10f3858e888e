"""Model loading, LoRA wrapping and the tiny model's build-once cache (hpc_fed/model/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hpc_fed.distributed.collectives import LocalComm
from hpc_fed.errors import ConfigError
from hpc_fed.tiny.build import ensure_model, is_stale_tiny
from hpc_fed.model.config import LoraSettings, ModelConfig, TinyModelConfig
from hpc_fed.model.loading import apply_lora, load_base_model, trainable_parameters
from hpc_fed.tiny.model import FORMAT, MANIFEST


def test_lora_goes_on_the_language_model_and_the_projector_is_trained_in_full(tiny_model_dir):
    model = apply_lora(load_base_model(ModelConfig(path=tiny_model_dir)), LoraSettings(r=4))
    names = [n for n, _ in trainable_parameters(model)]
    assert names and all("vision_tower" not in n for n in names)
    assert any("q_proj.lora_A" in n for n in names) and any("multi_modal_projector" in n for n in names)
    assert names == [n for n, _ in trainable_parameters(model)]  # a fixed order, the same on every rank


def test_a_path_without_a_model_names_the_fix(tmp_path):
    with pytest.raises(ConfigError, match="make-tiny-model"):
        load_base_model(ModelConfig(path=str(tmp_path / "nothing")))


def test_the_tiny_model_is_built_once_and_rebuilt_when_its_format_is_old(tmp_path):
    cfg = ModelConfig(path="tiny", tiny=TinyModelConfig(dir=str(tmp_path / "tiny"), prefit_steps=0))
    ensure_model(cfg, LocalComm())
    manifest = tmp_path / "tiny" / MANIFEST
    assert json.loads(manifest.read_text())["format"] == FORMAT and not is_stale_tiny(tmp_path / "tiny")
    built = manifest.stat().st_mtime_ns
    ensure_model(cfg, LocalComm())  # cached: untouched
    assert manifest.stat().st_mtime_ns == built
    manifest.write_text(json.dumps({"format": FORMAT - 1}))
    assert is_stale_tiny(tmp_path / "tiny")
    ensure_model(cfg, LocalComm())
    assert json.loads(manifest.read_text())["format"] == FORMAT


def test_a_model_that_is_not_ours_is_never_rebuilt(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "config.json").write_text("{}")
    assert not is_stale_tiny(tmp_path / "real")
    ensure_model(ModelConfig(path=str(tmp_path / "real")), LocalComm())
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == ["config.json"]


def test_the_tiny_build_gives_the_same_weights_whatever_the_threads_around_it(tmp_path):
    """The pre-fit runs at BUILD_THREADS threads: a rank with 1 thread and one with 2 build the
    same base (a base built at another thread count scored 0.703 against 0.738)."""
    import torch

    from hpc_fed.tiny.model import BUILD_THREADS, make_tiny_model

    before = torch.get_num_threads()
    digests = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            cfg = TinyModelConfig(prefit_steps=3, prefit_batch_size=8)
            manifest = make_tiny_model(tmp_path / f"t{threads}", cfg)
            assert manifest["threads"] == BUILD_THREADS and torch.get_num_threads() == threads
            digests.append(manifest["weights_sha256"])
    finally:
        torch.set_num_threads(before)
    assert digests[0] == digests[1] and len(digests[0]) == 64


def test_a_tiny_model_built_by_other_code_or_settings_is_rebuilt(tmp_path, monkeypatch, caplog):
    """The cache is keyed on the build's recipe (code, pre-fit settings, library versions), not
    only its format: a base cached before the build changed is rebuilt, with a warning."""
    from hpc_fed.tiny import model as tiny
    from hpc_fed.tiny.build import stale_reason

    cfg = ModelConfig(path="tiny", tiny=TinyModelConfig(dir=str(tmp_path / "tiny"), prefit_steps=0))
    ensure_model(cfg, LocalComm())
    path, manifest = tmp_path / "tiny", tmp_path / "tiny" / MANIFEST
    assert json.loads(manifest.read_text())["recipe"] == tiny.recipe(cfg.tiny)
    assert stale_reason(path, cfg.tiny) is None
    other = TinyModelConfig(dir=str(path), prefit_steps=1)
    assert "pre-fit settings" in stale_reason(path, other)
    # the source of the build code enters the recipe
    monkeypatch.setattr(tiny, "RECIPE_SOURCES", tiny.RECIPE_SOURCES[:-1])
    assert tiny.recipe(cfg.tiny) != json.loads(manifest.read_text())["recipe"]
    monkeypatch.undo()
    old = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**old, "recipe": "0" * 16}))
    with caplog.at_level("WARNING"):
        ensure_model(cfg, LocalComm())
    assert "other build code" in caplog.text
    assert json.loads(manifest.read_text())["recipe"] == tiny.recipe(cfg.tiny)


def test_the_recipe_covers_every_module_a_tiny_build_imports(tmp_path):
    """A fresh interpreter runs a build; every hpc_fed module it imported is in the recipe's
    sources or named as not deciding the weights (a new import must be classified), and every
    listed module is one it imported (a module moved away leaves no stale entry)."""
    import subprocess
    import sys

    from hpc_fed.tiny.model import NOT_WEIGHT_SOURCES, RECIPE_SOURCES

    code = ("import sys, json\n"
            "from hpc_fed.model.config import TinyModelConfig\n"
            "from hpc_fed.tiny.model import make_tiny_model\n"
            f"make_tiny_model({str(tmp_path / 't')!r}, TinyModelConfig(prefit_steps=1, "
            "prefit_batch_size=4))\n"
            "print(json.dumps([m.__file__ for n, m in list(sys.modules.items()) "
            "if n.split('.')[0] == 'hpc_fed']))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    package = Path(__file__).resolve().parents[2] / "hpc_fed"
    files = {Path(f).resolve().relative_to(package).as_posix()
             for f in json.loads(out.stdout.strip().splitlines()[-1])}
    assert files - set(RECIPE_SOURCES) - set(NOT_WEIGHT_SOURCES) == set()
    assert set(RECIPE_SOURCES) <= files  # no stale entry either
    assert set(NOT_WEIGHT_SOURCES) <= files
