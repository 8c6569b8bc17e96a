import shutil
from pathlib import Path

import pytest

from harness.core.errors import HarnessError, SuiteError
from harness.data.catalog import load_suite, resolve_suite
from harness.data.suites import load_suite_dir


def test_mini_suite_loads(mini_suite):
    assert [t.name for t in mini_suite.tasks] == ["qa", "clauses"]
    qa, clauses = mini_suite.tasks
    assert (len(qa.train), len(qa.dev), len(qa.test)) == (4, 1, 3)
    assert qa.test[0].aliases == ("nine days", "9")
    assert qa.test[0].meta["doc_id"] == "pell-harbour-code"
    assert clauses.test[0].choices == ("payment", "termination", "confidentiality")
    assert clauses.metrics == ("accuracy", "accuracy_norm", "balanced_accuracy")
    assert {d.id for d in mini_suite.corpus} == {"pell-harbour-code", "lanter-supply"}
    assert len(mini_suite.data_hash) == 64


def test_data_hash_changes_with_any_file(mini_suite_dir, tmp_path):
    copy = shutil.copytree(mini_suite_dir, tmp_path / "mini")
    before = load_suite_dir(copy).data_hash
    (copy / "corpus" / "lanter-supply.md").write_text("# Changed\n\nNew text.\n")
    assert load_suite_dir(copy).data_hash != before


def _append(rel: str, text: str):
    def mutate(root: Path) -> None:
        with (root / rel).open("a", encoding="utf-8") as f:
            f.write(text)
    return mutate


def _append_bytes(rel: str, data: bytes):
    def mutate(root: Path) -> None:
        with (root / rel).open("ab") as f:
            f.write(data)
    return mutate


def _write(rel: str, content: str | bytes):
    def mutate(root: Path) -> None:
        path = root / rel
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return mutate


def _toml_replace(old: str, new: str):
    def mutate(root: Path) -> None:
        path = root / "suite.toml"
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new))
    return mutate


DEFECTS = {
    "missing suite.toml": (lambda r: (r / "suite.toml").unlink(), "no suite.toml"),
    "bad TOML": (_toml_replace('name = "mini"', 'name = "mini'), "invalid TOML"),
    "unknown top-level key": (_toml_replace('license =', 'colour = "red"\nlicense ='), "field 'colour'"),
    "unknown task kind": (_toml_replace('kind = "short-answer"', 'kind = "essay"'), "field 'tasks.qa.kind'"),
    "missing split file": (lambda r: (r / "qa" / "dev.jsonl").unlink(), "field 'tasks.qa.splits.dev'"),
    "bad JSON line": (_append("qa/test.jsonl", '{"id": "q9", "question": \n'), "qa/test.jsonl:4: invalid JSON"),
    "missing field": (_append("qa/test.jsonl", '{"id": "q9", "question": "Q?"}\n'),
                      "qa/test.jsonl:4: field 'answer': Field required"),
    "wrongly typed field": (_append("qa/test.jsonl", '{"id": 9, "question": "Q?", "answer": "A"}\n'),
                            "qa/test.jsonl:4: field 'id'"),
    "label not in labels": (_append("clauses/test.jsonl", '{"id": "c9", "text": "T", "label": "tax"}\n'),
                            "clauses/test.jsonl:4: field 'label'"),
    "duplicate id": (_append("qa/test.jsonl", '{"id": "q1", "question": "Q?", "answer": "A"}\n'),
                     "field 'id': duplicate id 'q1'"),
    "empty test split": (_write("clauses/test.jsonl", "\n"), "test split of task 'clauses' is empty"),
    "unknown metric": (_toml_replace('max_new_tokens = 8', 'max_new_tokens = 8\nmetrics = ["bleu"]'),
                       "unknown metric 'bleu'"),
    "non-UTF-8 line": (_append_bytes("qa/test.jsonl", b'{"id": "q9", "question": "caf\xe9", "answer": "A"}\n'),
                       "qa/test.jsonl:4: not valid UTF-8"),
    "50 MB line": (_append("qa/test.jsonl", '{"id": "big", "question": "' + "x" * (50 << 20) + '", "answer": "a"}\n'),
                   "qa/test.jsonl:4: line is 52,428,"),
    "labels missing": (_toml_replace('labels = ["payment", "termination", "confidentiality"]\n', ''),
                       "needs 'labels'"),
    "corpus folder missing": (lambda r: shutil.rmtree(r / "corpus"), "field 'corpus': no folder"),
    "array instead of object": (_append("qa/test.jsonl", '["q9", "Q?", "A"]\n'), "expected a JSON object"),
    "test split not declared": (_toml_replace(', test = "clauses/test.jsonl" }', ' }'), "splits must include 'test'"),
    "negative max_new_tokens": (_toml_replace('max_new_tokens = 8', 'max_new_tokens = -1'),
                                "field 'tasks.qa.max_new_tokens'"),
    "empty question": (_append("qa/test.jsonl", '{"id": "q9", "question": "", "answer": "A"}\n'),
                       "qa/test.jsonl:4: field 'question'"),
}


@pytest.mark.parametrize("name", list(DEFECTS))
def test_malformed_suite_is_rejected_with_file_line_and_field(name, mini_suite_dir, tmp_path):
    mutate, expected = DEFECTS[name]
    root = shutil.copytree(mini_suite_dir, tmp_path / "mini")
    mutate(root)
    with pytest.raises(SuiteError) as err:
        load_suite_dir(root)
    assert expected in "\n".join(err.value.problems)


def test_every_problem_is_reported_not_only_the_first(mini_suite_dir, tmp_path):
    root = shutil.copytree(mini_suite_dir, tmp_path / "mini")
    _append("qa/test.jsonl", '{"id": "q9"}\nnot json\n')(root)
    _append("clauses/test.jsonl", '{"id": "c9", "text": "T", "label": "tax"}\n')(root)
    with pytest.raises(SuiteError) as err:
        load_suite_dir(root)
    assert len(err.value.problems) >= 4  # two missing fields, bad JSON, bad label


def test_unknown_suite_name_suggests_a_close_one():
    with pytest.raises(HarnessError, match="did you mean 'legal-qa'"):
        resolve_suite("legal-q")


def test_builtin_suites_load():
    legal, general = load_suite("legal-qa"), load_suite("general")
    assert len(legal.corpus) >= 30
    assert sum(len(t.train) + len(t.dev) + len(t.test) for t in legal.tasks) >= 300
    mc = general.task("mc")
    assert len(mc.test) >= 150 and all(len(e.choices) == 4 for e in mc.test)
    assert len(general.task("text").test) >= 50
