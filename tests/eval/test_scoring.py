"""Option scoring, metrics and evaluation (scoring and generation modes) against hand computations."""

import pytest
import torch

from hpc_fed.data.collate import IGNORE_INDEX, Collator
from hpc_fed.data.datasets.easyvqa import load_easyvqa
from hpc_fed.data.records import Record
from hpc_fed.eval.metrics import accuracy_counts
from hpc_fed.eval.scoring import option_loglik


def _records():
    test = load_easyvqa("test")
    return test[:3]


def test_option_scores_equal_teacher_forced_loglik(tiny_model_dir, processor):
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir).eval()
    col = Collator(processor)
    rec = _records()[0]
    # one multi-token option exercises the shared-prefix rows
    multi = Record(id="m", question=rec.question, answer="red circle",
                   options=("blue", "red circle", "red triangle"), image=rec.image)
    got = option_loglik(model, col, [rec, multi], torch.device("cpu"))
    assert len(got[0]) == len(rec.options) and len(got[1]) == 3
    for r, scores in ((rec, got[0]), (multi, got[1])):
        for k, option in enumerate(r.options):
            forced = Record(id="f", question=r.question, answer=option, options=(option,), image=r.image)
            batch = col.train_batch([forced])
            with torch.no_grad():
                logits = model(**{k2: v for k2, v in batch.items() if k2 != "labels"}).logits
            logp = torch.log_softmax(logits[0, :-1], -1)
            target = batch["labels"][0, 1:]
            mask = target != IGNORE_INDEX
            mask[mask.nonzero()[-1]] = False  # drop the eos: options are scored without it
            ref = logp[mask].gather(1, target[mask][:, None]).sum()
            assert torch.allclose(scores[k], ref, atol=1e-4)


def test_accuracy_counts_by_hand():
    ll = [torch.tensor([0.0, -1.0]), torch.tensor([-2.0, -1.0, -3.0]), torch.tensor([-1.0, -1.0])]
    correct, nll = accuracy_counts(ll, [0, 2, 1])
    assert correct == 1  # argmax 0 (right), 1 (wrong), tie -> 0 (wrong)
    assert nll > 0


def test_f1_from_a_hand_made_confusion_matrix():
    from hpc_fed.eval.metrics import f1_scores

    # true a: 3 (2 right, 1 -> b); true b: 1 (right); true c: 0 (but c predicted once for a? no)
    conf = torch.tensor([[2, 1, 0], [0, 1, 0], [0, 0, 0]])
    # a: P=2/2, R=2/3, F1=0.8; b: P=1/2, R=1, F1=2/3; c: absent from truth -> left out
    got = f1_scores(conf)
    assert got["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert got["weighted_f1"] == pytest.approx((0.8 * 3 + 2 / 3 * 1) / 4)


def test_invalid_replies_count_as_misses_in_f1_and_support():
    from hpc_fed.eval.metrics import f1_scores, per_class_report

    # 2 classes + an invalid column: true a: 1 right, 1 invalid; true b: 2 right
    conf = torch.tensor([[1, 0, 1], [0, 2, 0]])
    rep = per_class_report(conf, ["a", "b"])
    assert rep["a"] == {"precision": 1.0, "recall": 0.5, "f1": round(2 / 3, 4), "support": 2}
    assert f1_scores(conf)["macro_f1"] == pytest.approx((2 / 3 + 1.0) / 2)


def test_per_class_report_by_hand():
    from hpc_fed.eval.metrics import per_class_report

    conf = torch.tensor([[2, 1, 0], [0, 1, 0], [0, 0, 0]])
    rep = per_class_report(conf, ["a", "b", "c"])
    assert rep["a"] == {"precision": 1.0, "recall": round(2 / 3, 4), "f1": 0.8, "support": 3}
    assert rep["b"] == {"precision": 0.5, "recall": 1.0, "f1": round(2 / 3, 4), "support": 1}
    assert rep["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_roc_auc_counts_ties_half_and_needs_scores():
    from hpc_fed.eval.metrics import roc_auc

    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert roc_auc([0.5, 0.5], [0, 1]) == pytest.approx(0.5)
    assert roc_auc([0.9, 0.1], [1, 0]) == 1.0


def test_evaluate_reports_auc_from_option_probabilities_and_a_per_class_report(tiny_model_dir,
                                                                                   processor):
    import torch
    from transformers import AutoModelForImageTextToText

    from hpc_fed.data.datasets.easyvqa_tasks import load_claims
    from hpc_fed.eval.evaluate import evaluate
    from hpc_fed.eval.metrics import roc_auc
    from hpc_fed.eval.scoring import option_loglik

    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir).eval()
    col = Collator(processor)
    recs = load_claims("test")[:24]
    m = evaluate(model, col, recs, torch.device("cpu"), batch_size=10, per_class=True)
    ll = option_loglik(model, col, recs, torch.device("cpu"))
    expected = roc_auc([float(torch.softmax(s, 0)[1]) for s in ll], [r.label for r in recs])
    assert m["auc"] == pytest.approx(expected, abs=1e-6)
    assert set(m["per_class"]) == {"no", "yes"}
    assert sum(v["support"] for v in m["per_class"].values()) == 24 == m["samples"]


def test_generation_mode_parses_replies_and_scores_open_answers(tiny_model_dir, processor,
                                                                monkeypatch):
    import torch
    from transformers import AutoModelForImageTextToText

    from hpc_fed.eval import generate as gen
    from hpc_fed.eval.evaluate import evaluate

    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir).eval()
    col = Collator(processor)
    recs = load_easyvqa("test")[:6]
    replies = gen.generate_replies(model, col, recs, torch.device("cpu"), torch.float32, 3)
    assert len(replies) == 6 and all(isinstance(r, str) for r in replies)
    # Scoring of replies: choice records parsed, open records matched, by answer type.
    choice = [Record(id=f"c{i}", question="q?", answer=a, options=("no", "yes")) for i, a in
              enumerate(["yes", "no", "yes"])]
    open_ = [Record(id="o1", question="q?", answer="Two", answer_type="OPEN"),
             Record(id="o2", question="q?", answer="yes", answer_type="CLOSED")]
    canned = {"c0": "Answer: (B) yes", "c1": "maybe", "c2": "no", "o1": "2", "o2": "no"}
    monkeypatch.setattr(gen, "generate_replies",
                        lambda m, c, rs, *a, **k: [canned[r.id] for r in rs])
    m = evaluate(model, col, choice + open_, torch.device("cpu"), 2, mode="generation")
    assert m["accuracy"] == pytest.approx(1 / 3) and m["invalid_rate"] == pytest.approx(1 / 3)
    assert m["vqa_accuracy"] == 0.5 and m["open_accuracy"] == 1.0 and m["closed_accuracy"] == 0.0


def test_generation_counts_by_hand(tiny_model_dir, processor, monkeypatch):
    """The generation path's own counts (what runs report) against hand counts: replies parsed to
    options (a reply naming no option is wrong and counted invalid, never a class), open answers
    matched after normalisation and split by answer type, empty subsets None."""
    from transformers import AutoModelForImageTextToText

    from hpc_fed.eval import generate as gen
    from hpc_fed.eval.evaluate import evaluate

    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir).eval()
    hate = ("not-hateful", "hateful")
    choice = [Record(id=f"c{i}", question="q?", answer=hate[y], options=hate)
              for i, y in enumerate([1, 0, 0, 1, 0])]
    replies = {"c0": "(B) hateful", "c1": "not hateful", "c2": "A or B", "c3": "C", "c4": "Hateful."}
    open_answers = [("Yes.", "yes", "CLOSED"), ("no", "yes", "CLOSED"), ("the liver", "Liver", "OPEN"),
                    ("kidney", "spleen", "OPEN"), ("Two", "2", "OPEN"), ("CT", "MRI", None),
                    ("yes", "yes", None)]
    open_ = [Record(id=f"o{i}", question="q?", answer=a, answer_type=t)
             for i, (_, a, t) in enumerate(open_answers)]
    replies.update({f"o{i}": r for i, (r, _, _) in enumerate(open_answers)})
    monkeypatch.setattr(gen, "generate_replies", lambda m, c, rs, *a, **k: [replies[r.id] for r in rs])
    m = evaluate(model, Collator(processor), choice + open_, torch.device("cpu"), 3, mode="generation",
                 per_class=True)
    # choice: right c0, c1; invalid c2 ("A or B"), c3 (no option C); c4 names hateful, label not-hateful
    assert m["accuracy"] == pytest.approx(2 / 5) and m["invalid_rate"] == pytest.approx(2 / 5)
    assert m["per_class"]["hateful"]["support"] == 2 and m["per_class"]["not-hateful"]["support"] == 3
    # open: right o0 (closed), o2, o4 (open), o6 (untyped); wrong o1, o3, o5
    assert m["vqa_accuracy"] == pytest.approx(4 / 7) and m["open_accuracy"] == pytest.approx(2 / 3)
    assert m["closed_accuracy"] == pytest.approx(1 / 2)
    assert (m["open_samples"], m["closed_samples"], m["samples"]) == (3, 2, 12)
    only_closed = evaluate(model, Collator(processor), open_[:2], torch.device("cpu"), 2, mode="generation")
    assert only_closed["open_accuracy"] is None and only_closed["closed_accuracy"] == 0.5
    # the reference's "AUC" over the choice records (unparsed = 2), whatever the records' order:
    # an open record first does not hide it
    from hpc_fed.eval.metrics import roc_auc
    expected = roc_auc([1, 0, 2, 2, 1], [1, 0, 0, 1, 0])
    assert m["reference_auc"] == pytest.approx(expected)
    reordered = evaluate(model, Collator(processor), open_ + choice, torch.device("cpu"), 3,
                         mode="generation")
    assert reordered["reference_auc"] == pytest.approx(expected)


def test_binary_options_one_rule_for_both_modes():
    from hpc_fed.eval.metrics import binary_options

    hate = ("not-hateful", "hateful")
    closed = [Record(id=f"c{i}", question="q?", answer="hateful", options=hate) for i in range(2)]
    open_ = Record(id="o", question="q?", answer="liver", answer_type="OPEN")
    assert binary_options(closed) == hate
    assert binary_options([open_, *closed]) == hate  # open records are skipped
    assert binary_options([open_]) is None and binary_options([]) is None
    swapped = Record(id="s", question="q?", answer="hateful", options=hate[::-1])
    assert binary_options([*closed, swapped]) is None  # no one positive class
    three = Record(id="t", question="q?", answer="a", options=("a", "b", "c"))
    assert binary_options([three]) is None


def test_reference_auc_is_roc_auc_on_hard_labels_with_unparsed_as_2():
    """eval_hateful.py: roc_auc_score(truth, pred) with pred 0 / 1 and 2 for a reply it cannot
    parse; without such replies it is balanced accuracy."""
    from hpc_fed.eval.metrics import reference_auc, roc_auc

    truth = [0, 0, 0, 0, 1, 1, 1, 0, 1, 1]
    pred = [0, 1, 0, 2, 1, 0, 2, 0, 1, 1]  # 2: unparsed
    conf = torch.zeros(2, 3, dtype=torch.float64)  # classes sorted: 0 = positive here, 1 = negative
    for t, p in zip(truth, pred):
        conf[1 - t, {0: 1, 1: 0, 2: 2}[p]] += 1
    assert reference_auc(conf, negative=1, positive=0) == pytest.approx(roc_auc(pred, truth))
    clean = torch.tensor([[30.0, 10.0], [5.0, 55.0]])  # rows truth (neg, pos), cols predicted
    tpr, tnr = 55 / 60, 30 / 40
    assert reference_auc(clean, negative=0, positive=1) == pytest.approx((tpr + tnr) / 2)


def test_macro_f1_sklearn_counts_classes_only_predicted():
    from hpc_fed.eval.metrics import f1_scores

    # class 2 never true but predicted once: sklearn's macro average includes its F1 of 0
    conf = torch.tensor([[3.0, 0.0, 1.0], [1.0, 2.0, 0.0], [0.0, 0.0, 0.0]])
    f1_0, f1_1 = 2 * 0.75 * 0.75 / 1.5, 2 * 1.0 * (2 / 3) / (1 + 2 / 3)
    got = f1_scores(conf)
    assert got["macro_f1"] == pytest.approx((f1_0 + f1_1) / 2)
    assert got["macro_f1_sklearn"] == pytest.approx((f1_0 + f1_1 + 0.0) / 3)
