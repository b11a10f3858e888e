"""Model loading, LoRA wrapping and the tiny model's build-once cache (hpc_fed/model/)."""

from __future__ import annotations

import json

import pytest

from hpc_fed.distributed.collectives import LocalComm
from hpc_fed.errors import ConfigError
from hpc_fed.model.build import ensure_model, is_stale_tiny
from hpc_fed.model.config import LoraSettings, ModelConfig, TinyModelConfig
from hpc_fed.model.loading import apply_lora, load_base_model, trainable_parameters
from hpc_fed.model.tiny import FORMAT, MANIFEST


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
    same base (issue 16: a rebuilt base elsewhere scored 0.703 against 0.738)."""
    import torch

    from hpc_fed.model.tiny import BUILD_THREADS, make_tiny_model

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
