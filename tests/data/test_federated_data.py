"""Load -> partition -> scenario, as a run and `hpc-fed data describe` see it."""

import json

from pathlib import Path

import pytest

from hpc_fed.cli import main as cli_main
from hpc_fed.config import load_config
from hpc_fed.data.federated import build_federated_data, partition_summary
from hpc_fed.errors import ConfigError


def data_cfg(*overrides):
    return load_config(None, ["data.name=easyvqa_claims", "data.max_train_samples=1200",
                              *overrides])


def test_partition_json_has_ids_modalities_and_labels_per_client():
    cfg = data_cfg("data.scenario=missing", "data.beta=0.4")
    data = build_federated_data(cfg.data, cfg.fed.num_clients)
    summary = partition_summary(data, cfg.data)
    assert summary["scenario"] == "missing" and summary["beta"] == 0.4
    assert summary["primary_metric"] == "auc"
    ids = [i for c in summary["clients"] for i in c["ids"]]
    assert sorted(ids) == sorted(r.id for r in data.train) and len(ids) == 1200
    for c in summary["clients"]:
        assert sum(c["modalities"].values()) == c["samples"] == sum(c["labels"].values())
    both = sum(c["modalities"]["both"] for c in summary["clients"]) / 1200
    assert abs(both - 0.6 ** 2) < 0.05  # keeps image (0.6) and text (0.6) independently
    assert all(r.image and r.text for r in data.test)  # test set stays full-modality


def test_cross_and_hybrid_on_the_real_partition_and_reproducible():
    cfg = data_cfg("data.scenario=cross", "data.k=3")
    data = build_federated_data(cfg.data, 10)
    image_only = data.scenario["image_only_clients"]
    assert len(image_only) == 3
    for c, idx in enumerate(data.parts):
        kinds = {(data.train[i].image is not None, data.train[i].text is not None) for i in idx}
        assert kinds == ({(True, False)} if c in image_only else {(False, True)})
    again = build_federated_data(cfg.data, 10)
    assert again.train == data.train and again.parts == data.parts
    hyb = build_federated_data(data_cfg("data.scenario=hybrid", "data.p=0.7").data, 10)
    assert len(hyb.scenario["client_keeps"]) == 10
    assert not any(r.image is None and r.text is None for r in hyb.train)


def test_scenario_values_are_checked_at_load():
    with pytest.raises(ConfigError, match="data.k"):
        load_config(None, ["data.scenario=cross", "data.k=11"])
    with pytest.raises(ConfigError, match="data.beta"):
        load_config(None, ["data.beta=1.5"])
    with pytest.raises(ConfigError, match="data.root"):
        load_config(None, ["data.name=hateful_memes"])
    with pytest.raises(ConfigError, match="eval.mode=generation"):
        load_config(None, ["data.name=medvqa", "data.root=tests"])


def test_data_describe_prints_the_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "p.json"
    assert cli_main(["data", "describe", "configs/quickstart.yaml", "data.name=easyvqa_claims",
                     "data.scenario=cross", "data.k=5", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "scenario cross k=5" in text and "image-only clients" in text
    assert len(json.loads(out.read_text())["image_only_clients"]) == 5
    assert cli_main(["data", "describe", "configs/quickstart.yaml", "data.alpha=0"]) == 2
    assert "data.alpha" in capsys.readouterr().err


FIXTURES = "tests/fixtures"


@pytest.mark.parametrize("name,root,extra,metric", [
    ("hateful_memes", "hateful_memes", [], "auc"),
    ("crisismmd", "crisismmd", [], "macro_f1"),
    ("medvqa", "medvqa", ["eval.mode=generation"], "vqa_accuracy"),
    ("fedmllm", "fedmllm/llava", [f"data.image_root={FIXTURES}/fedmllm/llava/images"], "accuracy"),
])
def test_every_disk_dataset_goes_through_the_registry_and_a_scenario(name, root, extra, metric):
    cfg = load_config(None, [f"data.name={name}", f"data.root={FIXTURES}/{root}", "fed.num_clients=2",
                             "fed.sample_clients=1", "data.scenario=cross", "data.k=1", *extra])
    data = build_federated_data(cfg.data, 2)
    assert data.primary_metric == metric and data.test and sum(data.sizes) == len(data.train)
    assert data.scenario["image_only_clients"] in ([0], [1])
    summary = partition_summary(data, cfg.data)
    assert sum(c["modalities"]["both"] for c in summary["clients"]) == 0


def test_medvqa_source_partition_gives_image_clients_vqarad_and_text_clients_medalpaca():
    """FedMLLM v2's medical split: data.k image clients hold VQA-RAD, the rest MedAlpaca."""
    cfg = load_config(None, ["data.name=medvqa", f"data.root={FIXTURES}/medvqa", "eval.mode=generation",
                             "data.partition=source", "data.k=1", "fed.num_clients=3",
                             "fed.sample_clients=2"])
    data = build_federated_data(cfg.data, 3)
    sources = [{data.train[i].id.split("-")[0] for i in part} for part in data.parts]
    assert sources == [{"vqarad"}, {"medalpaca"}, {"medalpaca"}]
    assert sorted(len(p) for p in data.parts[1:]) == [1, 2] and len(data.parts[0]) == 3
    assert all(data.train[i].image for i in data.parts[0])
    assert not any(data.train[i].image for part in data.parts[1:] for i in part)
    assert build_federated_data(cfg.data, 3).parts == data.parts  # seeded
    with pytest.raises(ConfigError, match="data.k .0. clients the image source"):
        load_config(None, ["data.name=medvqa", f"data.root={FIXTURES}/medvqa", "eval.mode=generation",
                           "data.partition=source", "data.k=0"])
    with pytest.raises(ConfigError, match="needs a dataset made of sources"):
        load_config(None, ["data.name=easyvqa_memes", "data.partition=source"])
    with pytest.raises(ConfigError, match="source 'vqarad' has 3 samples for 4 clients"):
        over = load_config(None, ["data.name=medvqa", f"data.root={FIXTURES}/medvqa",
                                  "eval.mode=generation", "data.partition=source", "data.k=4",
                                  "fed.num_clients=6", "fed.sample_clients=2"])
        build_federated_data(over.data, 6)


def test_skip_that_empties_a_client_is_refused_in_one_line(tmp_path):
    """data.on_error=skip must not leave a client without samples (the message names the file)."""
    import shutil

    from hpc_fed.errors import DataFormatError

    root = tmp_path / "hm"
    shutil.copytree(Path(__file__).parents[1] / "fixtures" / "hateful_memes", root)
    for png in (root / "img").glob("*.png"):
        png.write_bytes(b"not a png")
    cfg = load_config(None, ["data.name=hateful_memes", f"data.root={root}", "fed.num_clients=2",
                             "data.partition=iid", "data.on_error=skip"])
    with pytest.raises(DataFormatError, match=r"left client\(s\) \[0, 1\] with no samples.*\.png"):
        build_federated_data(cfg.data, 2)
