"""Reply scoring (hpc_fed.eval.answers): hand-computed expectations, no model."""

import math

import pytest

from hpc_fed.eval.answers import (
    choice_scores,
    exact_match,
    format_options,
    normalize_answer,
    option_letters,
    parse_option,
    vqa_scores,
)

HATE = ["not-hateful", "hateful"]  # the prefix trap: "hateful" is inside "not-hateful"
CRISIS = ["affected individuals", "infrastructure and utility damage", "not humanitarian",
          "other relevant information", "rescue volunteering or donation effort"]


def test_option_letters():
    assert option_letters(0) == []
    assert option_letters(3) == ["A", "B", "C"]
    assert option_letters(26)[-1] == "Z"
    with pytest.raises(ValueError):
        option_letters(27)
    with pytest.raises(ValueError):
        option_letters(-1)


def test_format_options():
    assert format_options(HATE) == "(A) not-hateful (B) hateful"
    assert format_options(["yes", "no", "maybe"]) == "(A) yes (B) no (C) maybe"
    assert format_options([]) == ""


@pytest.mark.parametrize("reply, expected", [
    # letters
    ("B", 1), ("b", 1), ("(B)", 1), ("B.", 1), ("B)", 1), ("B:", 1), ("[B]", 1), ("**B**", 1),
    ("A", 0), ("(a)", 0), ("A.", 0),
    ("(B) hateful", 1), ("B. hateful", 1), ("B) hateful", 1), ("B - hateful", 1),
    ("(A) not-hateful", 0), ("A) Not hateful.", 0),
    ("Answer: B", 1), ("answer: b", 1), ("Answer:B", 1), ("The answer is (B).", 1),
    ("The answer is B.", 1), ("The answer is B because the caption mocks a group.", 1),
    ("The correct option is A", 0), ("Option b", 1), ("My choice: (A)", 0),
    ("answer: (b) hateful", 1), ("Answer:\nB", 1),
    ("I think it's B.", 1), ("It is A.", 0), ("I choose b", 1), ("It's B because it is hateful", 1),
    ("The meme is hateful, so the answer is B", 1), ("Hateful (B)", 1), ("(B)hateful", 1),
    ("ANSWER: B", 1), ("The best answer is B", 1), ("B\n", 1),
    ("  \n B \n", 1), ("\nB\n\nThe caption insults a group.", 1),
    ("Explanation: the caption insults a group.\nB", 1),
    # option text alone / inside a sentence
    ("hateful", 1), ("Hateful.", 1), ("HATEFUL!", 1), ("  hateful\n", 1),
    ("not-hateful", 0), ("not hateful", 0), ("Not Hateful", 0), ("Not-hateful.", 0), ("nothateful", None),
    ("This meme is hateful.", 1), ("This meme is not hateful.", 0), ("Answer: not hateful", 0),
    ("The answer is hateful", 1), ("the answer is a hateful meme", 1),
    ("Answer: I think it is hateful", 1),
    # no option / ambiguous / contradictory -> None, never a default class
    ("", None), ("   \n ", None), ("I don't know.", None), ("C", None), ("(C)", None),
    ("(C) hateful", None), ("A or B", None), ("(A) or (B)", None), ("either A or B", None),
    ("A, B", None), ("A/B", None), ("(A) not-hateful (B) hateful", None),
    ("hateful or not hateful", None), ("It is hateful and not hateful at the same time", None),
    ("(A) hateful", None), ("A. hateful", None), ("Answer: B, not hateful", None),
    ("The answer is A hateful meme", None),
    ("Answer: A or B", None), ("Answer: (A)\nAnswer: (B)", None), ("A) hateful", None),
    ("Neither", None), ("non-hateful", None),  # "non" negates "hateful"; it is not "not-hateful"
    # one letter wins over text naming several options (an explanation quoting both)
    ("B. It is hateful, even though it may look not hateful.", 1),
    # an article "A" opening a sentence is not a letter
    ("A hateful meme.", 1), ("A meme that is not hateful.", 0), ("It is a hateful meme", 1),
])
def test_parse_option_hateful(reply, expected):
    assert parse_option(reply, HATE) == expected


@pytest.mark.parametrize("options, reply, expected", [
    # negated mention of an option with no "not ..." option names nothing
    (["hateful", "benign"], "not hateful", None),
    (["hateful", "benign"], "It isn't hateful, it is benign.", 1),
    (["hateful", "benign"], "no, benign", 1),
    (["yes", "no"], "No.", 1), (["yes", "no"], "Yes", 0), (["yes", "no"], "yes and no", None),
    # option order does not matter for the longest-match rule
    (["hateful", "not-hateful"], "not hateful", 1), (["hateful", "not-hateful"], "hateful", 0),
    (CRISIS, "(C) not humanitarian", 2), (CRISIS, "Infrastructure and utility damage.", 1),
    (CRISIS, "E", 4), (CRISIS, "rescue volunteering or donation effort", 4),
    (CRISIS, "other", None), (CRISIS, "F", None), (CRISIS, "Answer: C", 2),
    (CRISIS, "humanitarian", None),
    # with five options "E or C" is two letters
    (CRISIS, "E or C", None),
])
def test_parse_option_other_option_sets(options, reply, expected):
    assert parse_option(reply, options) == expected


def test_parse_option_needs_options():
    with pytest.raises(ValueError):
        parse_option("A", [])


@pytest.mark.parametrize("raw, expected", [
    ("Yes", "yes"), ("  No.  ", "no"), ("The liver.", "liver"), ("an MRI", "mri"),
    ("A  lesion\n in the   left lobe", "lesion in left lobe"),
    ("two", "2"), ("Ten", "10"), ("zero", "0"), ("eleven", "eleven"),
    ("2.5", "2.5"), ("2.5 cm.", "2.5 cm"), ("2.", "2"), ("1,000", "1000"), ("left, right", "left right"),
    ("x-ray", "x ray"), ("T2-weighted", "t2 weighted"), ("patient's lung", "patients lung"),
    ("left/right?", "left right"), ("50%", "50%"), ("", ""), ("...", ""),
    ("theory", "theory"), ("another", "another"),  # articles only as whole words
])
def test_normalize_answer(raw, expected):
    assert normalize_answer(raw) == expected


@pytest.mark.parametrize("reply, answer, expected", [
    ("Yes.", "yes", True), ("The Liver", "liver", True), ("two", "2", True), ("2", "Two", True),
    ("x-ray", "X ray", True), ("left lung", "right lung", False), ("Yes, there is", "yes", False),
    ("", "", False), ("...", "", False), ("2.5", "25", False),
])
def test_exact_match(reply, answer, expected):
    assert exact_match(reply, answer) is expected


def test_vqa_scores_hand_counts():
    replies = ["Yes.", "no", "the liver", "kidney", "Two", "CT", "yes"]
    answers = ["yes", "yes", "Liver", "spleen", "2", "MRI", "yes"]
    types = ["CLOSED", "CLOSED", "OPEN", "OPEN", "open", None, None]
    # right: 0 (closed), 2 (open), 4 (open), 6 (untyped); wrong: 1 (closed), 3 (open), 5 (untyped)
    scores = vqa_scores(replies, answers, types)
    assert scores == {"vqa_accuracy": 4 / 7, "open_accuracy": 2 / 3, "closed_accuracy": 1 / 2,
                      "open_samples": 3, "closed_samples": 2, "samples": 7}


def test_vqa_scores_empty_subsets_are_none():
    scores = vqa_scores(["yes", "no"], ["yes", "yes"], ["CLOSED", "CLOSED"])
    assert scores["open_accuracy"] is None and scores["open_samples"] == 0
    assert scores["closed_accuracy"] == 0.5 and scores["vqa_accuracy"] == 0.5
    empty = vqa_scores([], [], [])
    assert empty["vqa_accuracy"] is None and empty["closed_accuracy"] is None
    assert not any(isinstance(v, float) and math.isnan(v) for v in empty.values())


def test_vqa_scores_rejects_bad_input():
    with pytest.raises(ValueError):
        vqa_scores(["a"], ["a", "b"], [None])
    with pytest.raises(ValueError):
        vqa_scores(["a"], ["a"], ["YESNO"])


def test_choice_scores_hand_counts():
    predictions = [0, 1, None, 2, 2, None, 1]
    labels = [0, 2, 1, 2, 0, 0, 1]
    scores = choice_scores(predictions, labels, 3)
    # right: 0, 3, 6 -> 3/7; invalid: 2, 5 -> 2/7 (absent from the confusion, wrong in accuracy)
    assert scores["accuracy"] == 3 / 7
    assert scores["invalid_rate"] == 2 / 7
    assert scores["confusion"] == [[1, 0, 1],
                                   [0, 1, 0],
                                   [0, 1, 1]]
    assert scores["samples"] == 7 and scores["invalid"] == 2
    # an invalid reply is never a class, not even the last one (the reference-code bug)
    assert sum(map(sum, scores["confusion"])) == 5


def test_choice_scores_edge_cases():
    empty = choice_scores([], [], 2)
    assert empty["accuracy"] is None and empty["invalid_rate"] is None
    assert empty["confusion"] == [[0, 0], [0, 0]]
    assert choice_scores([None, None], [0, 1], 2)["accuracy"] == 0.0
    with pytest.raises(ValueError):
        choice_scores([0], [0, 1], 2)
    with pytest.raises(ValueError):
        choice_scores([2], [0], 2)
    with pytest.raises(ValueError):
        choice_scores([0], [5], 2)


def test_parse_then_score_end_to_end():
    replies = ["(B) hateful", "not hateful", "A or B", "C", "Hateful."]
    labels = [1, 0, 0, 1, 0]
    predictions = [parse_option(r, HATE) for r in replies]
    assert predictions == [1, 0, None, None, 1]
    scores = choice_scores(predictions, labels, 2)
    assert scores["accuracy"] == 2 / 5 and scores["invalid_rate"] == 2 / 5
    assert scores["confusion"] == [[1, 1], [0, 1]]
