import math

from harness.core.metrics import balanced_accuracy, exact_match, mean, normalize_answer, token_f1


def test_normalize_drops_case_punctuation_articles_and_spaces():
    assert normalize_answer("  The  17 Days!! ") == "17 days"
    assert normalize_answer("An apple, a pear") == "apple pear"


def test_exact_match_takes_best_target():
    assert exact_match("twenty-one days", ["21 days", "twentyone days"]) == 1.0
    assert exact_match("21", ["21 days"]) == 0.0


def test_token_f1_partial_credit_by_hand():
    # pred tokens {the,deposit,21,days} -> normalized {deposit,21,days}; gold {21,days}
    # precision 2/3, recall 1 -> F1 = 0.8
    assert math.isclose(token_f1("the deposit 21 days", ["21 days"]), 0.8)
    assert token_f1("nothing", ["21 days"]) == 0.0
    assert token_f1("", [""]) == 1.0


def test_balanced_accuracy_by_hand():
    targets = ["a", "a", "a", "b"]
    preds = ["a", "a", "a", "a"]  # recall a = 1, recall b = 0
    assert balanced_accuracy(preds, targets) == 0.5
    assert math.isnan(balanced_accuracy([], []))


def test_mean_of_empty_is_nan():
    assert math.isnan(mean([]))
    assert mean([1.0, 0.0]) == 0.5


def test_answer_extraction_skips_lead_ins_prefixes_quotes_and_periods():
    from harness.data.kinds.short_answer import extract_answer

    assert extract_answer("The answer to this question is:\n\n17 days.") == "17 days"
    assert extract_answer("Answer: 3,250 crowns") == "3,250 crowns"
    assert extract_answer('"the Tenancy Board"') == "the Tenancy Board"
    assert extract_answer("  \n6.5 percent\nmore text") == "6.5 percent"
    assert extract_answer("") == "" and extract_answer("Answer:") == ""
