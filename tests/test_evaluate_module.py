"""The harness's metrics through `evaluate`, loaded from the local module path (offline): the same
numbers as harness.core.metrics."""

import pytest

from harness.core import metrics as M

PREDICTIONS = ["15 months", "12 months", "The deposit is returned within 21 days", "the Tenancy Board", "x"]
REFERENCES = [["15 months", "fifteen months"], ["15 months"], ["21 days"], ["the Tenancy Board"], ["written notice"]]


@pytest.mark.parametrize("name", ["exact_match", "f1", "key_match", "answer_in_output"])
def test_short_answer_metrics_equal_the_harness(name):
    import evaluate

    metric = evaluate.load(M.EVALUATE_MODULE, name)
    got = metric.compute(predictions=PREDICTIONS, references=REFERENCES)[name]
    score = {"exact_match": M.exact_match, "f1": M.token_f1, "key_match": M.key_match,
             "answer_in_output": M.answer_in_output}[name]
    want = M.mean([score(p, r) for p, r in zip(PREDICTIONS, REFERENCES, strict=True)])
    assert got == pytest.approx(want, abs=1e-12) and 0 < want < 1


def test_accuracy_equals_the_harness():
    import evaluate

    metric = evaluate.load(M.EVALUATE_MODULE, "accuracy")
    got = metric.compute(predictions=["payment", "liability", "payment"], references=["payment", "payment", "payment"])
    assert got["accuracy"] == pytest.approx(2 / 3)
