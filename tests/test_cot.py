"""Zero-shot chain of thought: prompts ask for reasoning and a final answer line, every task kind is
then generated and scored from that line, a classification answer must be one of the labels (else it
counts wrong, is counted in the record and logged), and prompts without the request score as before."""

import logging

import pytest
from harness_strategies.cot import Cot

from harness.data.evaluation import REASON, UNPARSED, answer_line, evaluate_task
from harness.data.prompts import zero_shot_prompt
from harness.model.runtime import Generation, ModelRuntime


class Scripted(ModelRuntime):
    """The tiny model's runtime, answering with fixed replies (in prompt order)."""

    def __init__(self, rt, replies):
        super().__init__(rt.model, rt.tokenizer, rt.spec, rt.device)
        self.replies, self.asked = list(replies), []

    def generate(self, texts, max_new_tokens, batch_size=8, stop=None):
        self.asked.append(max_new_tokens)
        self.stop, self.texts = stop, list(texts)
        return [Generation(self.replies.pop(0), 10, 40, 0.5) for _ in texts]


def test_the_answer_is_read_from_the_last_answer_line():
    assert answer_line("The term is 30 days.\nAnswer: 30 days.", "Answer:") == "30 days"
    assert answer_line("Answer: first\nthinking again\n**Answer:** \"payment\"", "Answer:") == "payment"
    assert answer_line("answer: Termination", "Answer:") == "Termination"
    assert answer_line("I think it is payment.", "Answer:") is None


def test_prompts_ask_for_reasoning_and_list_the_labels(mini_suite):
    cot = Cot(Cot.Options())
    clauses = mini_suite.tasks[1]
    prompts = cot.prompts(None, clauses, clauses.test)
    user = prompts[0].messages[-1].content
    assert clauses.test[0].input in user and "payment; termination; confidentiality" in user
    assert user.rstrip().endswith("Answer: <your answer>")
    assert prompts[0].meta[REASON] == {"answer_line": "Answer:", "max_new_tokens": 256}


def test_classification_is_generated_and_parsed_against_the_labels(mini_suite, tiny_runtime, caplog):
    task = mini_suite.tasks[1]
    targets = [ex.target for ex in task.test]
    wrong = next(label for label in task.labels if label != targets[1])
    replies = [f"It is about money.\nAnswer: {targets[0].title()}.", f"Reasons.\nAnswer: {wrong}",
               "It could be anything: a refund perhaps."]
    rt = Scripted(tiny_runtime, replies)
    prompts = Cot(Cot.Options(max_new_tokens=64)).prompts(None, task, task.test)
    with caplog.at_level(logging.WARNING, logger="harness.data.evaluation"):
        preds, result = evaluate_task(rt, task, task.test, prompts, batch_size=2)
    assert rt.asked == [64]
    assert [p.output for p in preds] == [targets[0], wrong, ""]
    assert [p.scores["accuracy"] for p in preds] == [1.0, 0.0, 0.0]
    assert [p.meta["answer_parsed"] for p in preds] == [True, True, False]
    assert result.metrics["accuracy"] == pytest.approx(1 / 3) and result.metrics[UNPARSED] == 1.0
    assert preds[2].meta["raw_output"] == replies[2] and preds[0].output_tokens == 40
    assert "1 of 3 replies had no valid answer line" in caplog.text and task.test[2].id in caplog.text


def test_a_label_that_is_not_one_of_the_labels_counts_wrong(mini_suite, tiny_runtime):
    task = mini_suite.tasks[1]
    rt = Scripted(tiny_runtime, ["Answer: refund"] * 3)
    preds, result = evaluate_task(rt, task, task.test, Cot(Cot.Options()).prompts(None, task, task.test))
    assert result.metrics[UNPARSED] == 3.0 and result.metrics["accuracy"] == 0.0
    assert all(p.output == "" for p in preds)


def test_short_answers_are_scored_by_their_kind_from_the_answer_line(mini_suite, tiny_runtime):
    task = mini_suite.tasks[0]
    ex = task.test[0]
    rt = Scripted(tiny_runtime, [f"Step one.\nAnswer: {ex.target}", "no answer", "Answer: something else"])
    preds, result = evaluate_task(rt, task, task.test, Cot(Cot.Options()).prompts(None, task, task.test))
    assert preds[0].scores["exact_match"] == 1.0 and preds[0].output == ex.target
    assert preds[1].scores == {m: 0.0 for m in preds[0].scores} and result.metrics[UNPARSED] == 1.0
    assert REASON not in preds[0].meta


def test_prompts_without_the_request_score_as_their_kind_does(mini_suite, tiny_runtime):
    task = mini_suite.tasks[1]
    prompts = [zero_shot_prompt(task, ex, "sys") for ex in task.test]
    preds, result = evaluate_task(tiny_runtime, task, task.test, prompts)
    assert all(len(p.choice_logprobs) == len(task.labels) for p in preds) and UNPARSED not in result.metrics


def test_a_base_model_answers_after_the_prompts_answer_marker(mini_suite, tiny_base_runtime):
    """A base model's prompt ends with "Answer:" (no chat template): a reply that answers straight away
    parses, reasoning may run over blank lines (generation stops at the next question instead), and the
    last answer line still wins."""
    task = mini_suite.tasks[1]
    targets = [ex.target for ex in task.test]
    replies = [f" {targets[0]}", f" Let me see.\n\nIt is about the end.\nAnswer: {targets[1]}", " Thinking only."]
    rt = Scripted(tiny_base_runtime, replies)
    preds, result = evaluate_task(rt, task, task.test, Cot(Cot.Options()).prompts(None, task, task.test))
    assert rt.texts[0].rstrip().endswith("Answer:") and rt.stop == ["\nQuestion:"]
    assert [p.output for p in preds] == [targets[0], targets[1], ""]
    assert result.metrics[UNPARSED] == 1.0
