"""The harness's per-item metrics as an `evaluate` module, loaded from this local path (loading metric
scripts from the hub fails offline), so code written against `evaluate` scores exactly as harness does:

    import evaluate
    from harness.core.metrics import EVALUATE_MODULE
    key_match = evaluate.load(EVALUATE_MODULE, "key_match")
    key_match.compute(predictions=["15 months"], references=[["15 months", "fifteen months"]])
    # {'key_match': 1.0}

Configurations: exact_match, f1, key_match, answer_in_output (references: a list of acceptable answers
per item, the gold answer and its aliases) and accuracy (references: one label per item). Each returns
the mean of the per-item scores, under its own name.
"""

import datasets
import evaluate

from harness.core import metrics as M

_SHORT_ANSWER = {"exact_match": M.exact_match, "f1": M.token_f1, "key_match": M.key_match,
                 "answer_in_output": M.answer_in_output}


class HarnessMetrics(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        if self.config_name in _SHORT_ANSWER:
            features = datasets.Features({"predictions": datasets.Value("string"),
                                          "references": datasets.Sequence(datasets.Value("string"))})
        elif self.config_name == "accuracy":
            features = datasets.Features({"predictions": datasets.Value("string"),
                                          "references": datasets.Value("string")})
        else:
            raise KeyError(f"unknown configuration {self.config_name!r}: one of "
                           f"{', '.join([*_SHORT_ANSWER, 'accuracy'])}")
        return evaluate.MetricInfo(description=__doc__ or "", citation="", inputs_description=__doc__ or "",
                                   features=features)

    def _compute(self, predictions: list[str], references: list) -> dict[str, float]:
        if self.config_name == "accuracy":
            scores = [M.accuracy(p, r) for p, r in zip(predictions, references, strict=True)]
        else:
            score = _SHORT_ANSWER[self.config_name]
            scores = [score(p, list(r)) for p, r in zip(predictions, references, strict=True)]
        return {self.config_name: M.mean(scores)}
