"""Reply scoring (hpc_fed.eval.answers): hand-computed expectations, no model."""


import pytest

from hpc_fed.eval.answers import exact_match, normalize_answer, parse_option

HATE = ["not-hateful", "hateful"]  # the prefix trap: "hateful" is inside "not-hateful"
CRISIS = ["affected individuals", "infrastructure and utility damage", "not humanitarian",
          "other relevant information", "rescue volunteering or donation effort"]


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
