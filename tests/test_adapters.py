"""Adapters: each format's fixture (written for these tests, in the real formats) becomes a suite that
the normal loader validates; carving is stratified, grouped, seeded; bad input names file, line, field."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from harness.core.errors import HarnessError
from harness.data import formats as adapters
from harness.data import hygiene
from harness.data.catalog import load_suite
from harness.data.formats import ImportOptions, cached_import, import_suite
from harness.data.formats.splits import carve
from harness.data.suites import load_suite_dir

FORMATS = Path(__file__).parent / "fixtures" / "formats"
CNLI = FORMATS / "contractnli" / "mini.json"
LEGALBENCH = FORMATS / "legalbench" / "tasks"
MMLU = FORMATS / "mmlu"
TABLE = FORMATS / "table"


def splits_of(task) -> dict[str, list]:
    return {"train": list(task.train), "dev": list(task.dev), "test": list(task.test)}


# ---------------------------------------------------------------- contractnli
def test_contractnli_items_corpus_and_document_splits(tmp_path):
    suite = import_suite("contractnli", str(CNLI), tmp_path / "cnli")
    assert load_suite_dir(tmp_path / "cnli").data_hash == suite.data_hash
    (task,) = suite.tasks
    raw = json.loads(CNLI.read_text())
    expected = Counter(a["choice"] for d in raw["documents"] for a in d["annotation_sets"][0]["annotations"].values())
    items = [ex for split in splits_of(task).values() for ex in split]
    assert Counter(ex.target for ex in items) == expected and len(items) == 18
    assert task.kind == "classification" and task.labels == ("Entailment", "Contradiction", "NotMentioned")
    assert {d.id for d in suite.corpus} == {f"doc-{d['id']}" for d in raw["documents"]}
    docs = {d.id: d.text for d in suite.corpus}
    for ex in items:
        assert ex.input.startswith("Hypothesis: ")
        assert [docs[ex.meta["doc_id"]][s:e] for s, e in ex.meta["evidence_spans"]] == ex.meta["evidence"]
        assert bool(ex.meta["evidence"]) == (ex.target != "NotMentioned")
    by_split = {s: {ex.meta["doc_id"] for ex in exs} for s, exs in splits_of(task).items()}
    assert all(by_split.values()) and not (by_split["train"] & by_split["test"]) and not (
        by_split["dev"] & by_split["test"]) and not (by_split["train"] & by_split["dev"])
    assert suite.source["format"] == "contractnli" and "by document" in suite.source["carved"]
    assert "CC BY 4.0" in suite.license


def test_contractnli_folder_keeps_its_splits(tmp_path):
    raw = json.loads(CNLI.read_text())
    folder = tmp_path / "release"
    folder.mkdir()
    for name, docs in (("train.json", raw["documents"][:4]), ("test.json", raw["documents"][4:])):
        (folder / name).write_text(json.dumps({"documents": docs, "labels": raw["labels"]}))
    task = import_suite("contractnli", str(folder), tmp_path / "s").tasks[0]
    assert (len(task.train), len(task.dev), len(task.test)) == (12, 0, 6)


def test_contractnli_evidence_spans_are_trimmed_of_whitespace(tmp_path):
    """The release's spans often run into the next one's leading space; retrieval scoring wants the
    clause itself, so a chunk holding the whole clause covers it."""
    raw = json.loads(CNLI.read_text())
    doc = raw["documents"][0]
    s, e = doc["spans"][4]
    doc["spans"][4] = [s - 1, e + 1]  # take in the newlines either side
    assert doc["text"][s - 1] == "\n" and doc["text"][e] == "\n"
    (tmp_path / "dev.json").write_text(json.dumps(raw))
    suite = import_suite("contractnli", str(tmp_path / "dev.json"), tmp_path / "s")
    items = [ex for split in splits_of(suite.tasks[0]).values() for ex in split]
    [ex] = [ex for ex in items if ex.id == "doc-100-nda-1"]
    assert ex.meta["evidence_spans"] == [[s, e]] and ex.meta["evidence"] == [doc["text"][s:e]]


def test_import_is_reproducible_and_ids_are_stable(tmp_path):
    a = import_suite("contractnli", str(CNLI), tmp_path / "a", ImportOptions(name="same"))
    b = import_suite("contractnli", str(CNLI), tmp_path / "b", ImportOptions(name="same"))
    c = import_suite("contractnli", str(CNLI), tmp_path / "c", ImportOptions(name="same", seed=3))
    ids = lambda s: {k: [ex.id for ex in v] for k, v in splits_of(s.tasks[0]).items()}  # noqa: E731
    assert ids(a) == ids(b) and a.data_hash == b.data_hash
    every = lambda s: sorted(i for part in ids(s).values() for i in part)  # noqa: E731
    assert ids(a) != ids(c) and every(a) == every(c)


# ---------------------------------------------------------------- legalbench
def test_legalbench_tasks_folder(tmp_path):
    suite = import_suite("legalbench", str(LEGALBENCH), tmp_path / "lb")
    consent, notice = suite.task("consent_to_assign"), suite.task("notice_period")
    assert consent.kind == "classification" and consent.labels == ("No", "Yes")
    assert consent.metrics == ("accuracy", "accuracy_norm", "balanced_accuracy")
    assert (len(consent.train), len(consent.dev), len(consent.test)) == (6, 0, 48)
    assert consent.instruction.startswith("Does the clause require consent") and consent.instruction.endswith(
        "Answer No or Yes.")
    assert '"Assignment Clause"' in next(ex.input for ex in consent.test if "Assignment Clause" in ex.input)
    assert notice.kind == "short-answer" and [ex.id for ex in notice.train] == [f"notice_period-train-{i}"
                                                                                for i in range(4)]
    assert notice.test[0].input.startswith("question: ") and "\nclause: " in notice.test[0].input
    assert suite.license.startswith("CC BY 4.0") and suite.source["tasks"] == ["consent_to_assign", "notice_period"]


def test_legalbench_single_task_folder_and_subjects(tmp_path):
    one = import_suite("legalbench", str(LEGALBENCH / "notice_period"), tmp_path / "one")
    picked = import_suite("legalbench", str(LEGALBENCH), tmp_path / "two", ImportOptions(subjects=("notice_period",)))
    assert [t.name for t in one.tasks] == [t.name for t in picked.tasks] == ["notice_period"]


def test_cuad_style_duplicates_are_counted_and_dropped_before_scoring(tmp_path):
    with (LEGALBENCH / "consent_to_assign" / "test.tsv").open(newline="") as f:
        rows = [tuple(r) for r in list(csv.reader(f, delimiter="\t"))[1:]]
    repeats = len(rows) - len(set(rows))  # the independent count
    assert repeats > 0
    import_suite("legalbench", str(LEGALBENCH), tmp_path / "lb")
    report = hygiene.check(load_suite(str(tmp_path / "lb"), dedupe=False))
    assert report.count(hygiene.DUPLICATE, "consent_to_assign") == repeats
    deduped = load_suite(str(tmp_path / "lb"))  # the path compare takes
    assert len(deduped.task("consent_to_assign").test) == len(set(rows))
    assert f"consent_to_assign test: dropped {repeats} duplicate items of {len(rows)}" in deduped.notes[0]


def test_legalbench_carve_is_stratified_keeps_duplicates_together_and_shots_in_train(tmp_path):
    suite = import_suite("legalbench", str(LEGALBENCH), tmp_path / "lb", ImportOptions(carve=True))
    task = suite.task("consent_to_assign")
    parts = splits_of(task)
    assert sum(len(p) for p in parts.values()) == 6 + 48
    assert {ex.id for ex in task.train} >= {f"consent_to_assign-train-{i:04d}" for i in range(1, 7)}
    texts = {s: {hygiene.normalize(ex.input) for ex in exs} for s, exs in parts.items()}
    assert not (texts["train"] & texts["test"]) and not (texts["dev"] & texts["test"])
    for split in ("dev", "test"):
        share_yes = sum(ex.target == "Yes" for ex in parts[split]) / len(parts[split])
        assert 0.3 <= share_yes <= 0.7, split
    assert "70/15/15" in suite.source["carved"] and suite.source["carve"] is True
    assert hygiene.check(suite).count(hygiene.OVERLAP_EXACT) == 0


# ---------------------------------------------------------------- mmlu
def test_mmlu_subjects_choices_and_splits(tmp_path):
    suite = import_suite("mmlu", str(MMLU), tmp_path / "m")
    assert [t.name for t in suite.tasks] == ["civil_procedure", "contract_law"]
    law = suite.task("contract_law")
    assert (law.kind, len(law.train), len(law.dev), len(law.test)) == ("multiple-choice", 5, 0, 12)
    first = law.test[0]
    assert first.id == "contract_law-val-0001" and first.target == "frustrated"
    assert first.choices == ("voidable", "frustrated", "rescinded", "novated")
    assert next(ex for ex in law.test if ex.input.startswith("The age")).choices == ("16", "18", "21")
    assert suite.source["repeated_options_merged"] == 1 and "MIT" in suite.license


def test_mmlu_subject_selection_and_carve(tmp_path):
    suite = import_suite("mmlu", str(MMLU), tmp_path / "m", ImportOptions(subjects=("contract_law",), carve=True))
    (law,) = suite.tasks
    assert (len(law.train), len(law.dev), len(law.test)) == (5, 6, 6)
    with pytest.raises(HarnessError, match="no subject 'contract_lw'; did you mean 'contract_law'"):
        import_suite("mmlu", str(MMLU), tmp_path / "n", ImportOptions(subjects=("contract_lw",)))


# ---------------------------------------------------------------- table
def test_table_jsonl_with_mapping_carves_by_group(tmp_path):
    suite = import_suite("table", str(TABLE / "qa.jsonl"), tmp_path / "t",
                         ImportOptions(mapping=TABLE / "qa-map.toml"))
    (task,) = suite.tasks
    assert task.name == "harbour-qa" and task.instruction == "Answer with a short phrase."
    groups = {s: {ex.meta["doc"] for ex in exs} for s, exs in splits_of(task).items()}
    assert all(groups.values()) and sum(len(g) for g in groups.values()) == 3  # each document in one split
    assert suite.source["carved"] == "70/15/15 train/dev/test, seed 0, by column doc"
    q0 = next(ex for ex in task.train + task.dev + task.test if ex.id == "q00")
    assert q0.aliases == ("9 days", "9") and q0.target == "nine days"


def test_table_csv_split_column_and_mc_letters(tmp_path):
    clauses = import_suite("table", str(TABLE / "clauses.csv"), tmp_path / "c",
                           ImportOptions(mapping=TABLE / "clauses-map.toml")).tasks[0]
    assert ([ex.id for ex in clauses.dev], len(clauses.train), len(clauses.test)) == (["c06"], 5, 3)
    assert clauses.labels == ("payment", "termination", "confidentiality")
    mc = import_suite("table", str(TABLE / "mc-map.toml"), tmp_path / "mc").tasks[0]
    assert [ex.target for ex in mc.test] == ["The parties", "A rejection with new terms", "Rescission"]


def test_table_parquet_reads_like_jsonl(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [json.loads(line) for line in (TABLE / "qa.jsonl").read_text().splitlines()]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "qa.parquet")
    a = import_suite("table", str(TABLE / "qa.jsonl"), tmp_path / "a", ImportOptions(mapping=TABLE / "qa-map.toml"))
    b = import_suite("table", str(tmp_path / "qa.parquet"), tmp_path / "b",
                     ImportOptions(mapping=TABLE / "qa-map.toml"))
    assert splits_of(a.tasks[0]) == splits_of(b.tasks[0])


def test_table_hub_dataset_goes_through_datasets_load_dataset(tmp_path, monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(name, config=None):
        calls.append((name, config))
        row = lambda i: {"q": f"Which clause is number {i}?", "a": f"clause {i}", "uid": f"u{i}"}  # noqa: E731
        return {"train": [row(1), row(2)], "validation": [row(3)], "test": [row(4), row(5)]}

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    mapping = tmp_path / "map.toml"
    mapping.write_text('[columns]\ninput = "q"\ntarget = "a"\nid = "uid"\n')
    suite = import_suite("table", "someone/contract-questions", tmp_path / "hub", ImportOptions(mapping=mapping))
    task = suite.tasks[0]
    assert calls == [("someone/contract-questions", None)]
    assert [[ex.id for ex in part] for part in splits_of(task).values()] == [["u1", "u2"], ["u3"], ["u4", "u5"]]
    assert suite.source["path"] == "someone/contract-questions"


# ---------------------------------------------------------------- carving
def test_carve_is_stratified_grouped_seeded_and_reproducible():
    items = [(i, "rare" if (i // 2) % 5 == 0 else "common", f"g{i // 2}") for i in range(400)]  # groups of 2
    group, label = (lambda it: it[2]), (lambda it: it[1])
    a = carve(items, 0, group=group, label=label)
    assert a == carve(items, 0, group=group, label=label)
    assert a != carve(items, 1, group=group, label=label)
    assert [len(a[s]) for s in ("train", "dev", "test")] == [280, 60, 60]
    assert [sum(it[1] == "rare" for it in a[s]) for s in ("train", "dev", "test")] == [56, 12, 12]
    owner = {it[2]: s for s, part in a.items() for it in part}
    assert all(owner[it[2]] == s for s, part in a.items() for it in part)  # no group is split


def test_carve_leaves_no_split_empty_with_few_large_groups():
    parts = carve(list(range(10)), 0, group=lambda i: str(i // 4))
    assert all(parts.values()) and sorted(i for part in parts.values() for i in part) == list(range(10))


# ---------------------------------------------------------------- <format>:<path> and the cache
def test_format_ref_imports_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "dev.json"
    shutil.copy(CNLI, src)
    suite = load_suite(f"contractnli:{src}")
    assert suite.name == "contractnli-dev" and suite.root.parent == tmp_path / "cache" / "suites"
    assert len(suite.task("contractnli").test) == 3 and len(suite.corpus) == 6

    def no_second_import(*args, **kwargs):
        raise AssertionError("imported again")

    monkeypatch.setattr(adapters, "import_suite", no_second_import)
    assert load_suite(f"contractnli:{src}").root == suite.root  # reused
    monkeypatch.undo()
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    raw = json.loads(src.read_text())
    raw["documents"] = raw["documents"][:5]
    src.write_text(json.dumps(raw))
    changed = load_suite(f"contractnli:{src}")
    assert changed.root != suite.root and len(changed.corpus) == 5


def test_format_ref_for_a_table_mapping_and_deduplication(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    assert load_suite(f"table:{TABLE / 'mc-map.toml'}").tasks[0].name == "contract-mc"
    suite = load_suite(f"legalbench:{LEGALBENCH}")
    assert suite.name == "legalbench" and suite.notes  # duplicates dropped, and said so
    assert cached_import("legalbench", str(LEGALBENCH)) == suite.root


# ---------------------------------------------------------------- bad input
def _copy_fixture(tmp_path: Path, rel: str) -> Path:
    src = FORMATS / rel
    dst = tmp_path / "data" / rel
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        dst.parent.mkdir(parents=True)
        shutil.copy(src, dst)
    return dst


def _replace(rel: str, old: str, new: str):
    def mutate(path: Path) -> None:
        text = path.read_text() if path.is_file() else (path / rel).read_text()
        target = path if path.is_file() else path / rel
        assert old in text
        target.write_text(text.replace(old, new, 1))
    return mutate


BAD = {
    "unknown format": ("contractnl", "contractnli/mini.json", None, "unknown format 'contractnl'; did you mean"),
    "missing path": ("mmlu", "no/such/folder", None, "no such file or folder"),
    "malformed JSON": ("contractnli", "contractnli/mini.json", _replace("", '"documents": [', '"documents": [,'),
                       "mini.json:2: invalid JSON"),
    "ContractNLI field missing": ("contractnli", "contractnli/mini.json", _replace("", '"text":', '"txt":'),
                                  "mini.json: field 'documents.0.text': Field required"),
    "ContractNLI bad span": ("contractnli", "contractnli/mini.json", _replace("", '"spans": [\n        4\n',
                                                                             '"spans": [\n        99\n'),
                             "field 'documents.0.annotation_sets.0.annotations.nda-1.spans': span 99 out of range"),
    "TSV without label column": ("legalbench", "legalbench/tasks",
                                 _replace("consent_to_assign/test.tsv", "label\t", "verdict\t"),
                                 "consent_to_assign/test.tsv:1: field 'answer': no 'answer' or 'label' column"),
    "TSV ragged row": ("legalbench", "legalbench/tasks",
                       _replace("consent_to_assign/test.tsv", "\n", "\nYes\tOne\tToo many\n"),
                       "consent_to_assign/test.tsv:2: 3 fields, but the header has 2"),
    "TSV broken quotes": ("legalbench", "legalbench/tasks",
                          _replace("consent_to_assign/test.tsv", '\t"The ""Assignment', '\t"The "Assignment'),
                          "consent_to_assign/test.tsv:48: malformed TSV: '\\t' expected after '\"'"),
    "MMLU bad answer": ("mmlu", "mmlu", _replace("val/contract_law_val.csv", "novated,B", "novated,E"),
                        "val/contract_law_val.csv:1: field 'answer': 'E' is not one of A, B, C, D"),
    "MMLU missing field": ("mmlu", "mmlu", _replace("dev/civil_procedure_dev.csv", ",a writ of error,A", ",A"),
                           "dev/civil_procedure_dev.csv:1: 5 fields, expected 6"),
    "table missing column": ("table", "table", _replace("qa-map.toml", 'input = "q"', 'input = "query"'),
                             "qa.jsonl:1: field 'query': no such column"),
    "table unknown mapping key": ("table", "table", _replace("qa-map.toml", 'kind =', 'colour = "red"\nkind ='),
                                  "qa-map.toml: field 'colour': Extra inputs are not permitted"),
    "table bad JSONL": ("table", "table", _replace("qa.jsonl", '{"uid": "q03"', '{"uid": "q03",,'),
                        "qa.jsonl:4: invalid JSON"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_names_file_line_and_field(name, tmp_path):
    fmt, rel, mutate, expected = BAD[name]
    path = _copy_fixture(tmp_path, rel) if (FORMATS / rel).exists() else tmp_path / rel
    if mutate:
        mutate(path)
    options = ImportOptions(mapping=path / "qa-map.toml") if fmt == "table" else ImportOptions()
    source = path / "qa.jsonl" if fmt == "table" else path
    with pytest.raises(HarnessError) as err:
        import_suite(fmt, str(source), tmp_path / "out", options)
    message = "\n".join(getattr(err.value, "problems", [str(err.value)]))
    assert expected in message and "\n" not in str(err.value)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.tmp-*"))


def test_import_refuses_to_overwrite_without_force(tmp_path):
    import_suite("mmlu", str(MMLU), tmp_path / "m")
    with pytest.raises(HarnessError, match="pass --force"):
        import_suite("mmlu", str(MMLU), tmp_path / "m")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(HarnessError, match="not a suite folder"):
        import_suite("mmlu", str(MMLU), tmp_path / "other", overwrite=True)
    assert len(import_suite("mmlu", str(MMLU), tmp_path / "m", ImportOptions(subjects=("contract_law",)),
                            overwrite=True).tasks) == 1


def test_unknown_format_in_a_suite_ref():
    with pytest.raises(HarnessError, match="'contractnl' is not a known format"):
        load_suite("contractnl:data/dev.json")


# ---------------------------------------------------------------- the CLI
def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "COLUMNS": "200", "HARNESS_CACHE": str(cwd / "cache")})


def test_cli_import_then_check(tmp_path):
    proc = cli("suites", "import", "legalbench", str(LEGALBENCH), "--out", "suites/lb", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "wrote suites/lb: suite lb, 2 tasks" in proc.stdout and "hygiene: 9 duplicate" in proc.stdout
    assert "consent_to_assign (classification): train 6, dev 0, test 48" in proc.stdout
    proc = cli("suites", "check", "lb", cwd=tmp_path)  # found by name in ./suites
    assert proc.returncode == 2 and "1 of 48 test items (2.1%) are copies" in proc.stderr
    assert "hygiene of lb" in proc.stdout and "label balance" in proc.stdout  # the findings and balance tables
    proc = cli("suites", "check", "lb", "--allow-leaks", cwd=tmp_path)
    assert proc.returncode == 0 and "leak:" in proc.stdout
    proc = cli("suites", "import", "mmlu", str(tmp_path / "nowhere"), "--out", "x", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith("error:") and "no such file or folder" in proc.stderr


def test_a_problem_found_by_the_loader_names_the_output_folder(tmp_path):
    folder = _copy_fixture(tmp_path, "legalbench/tasks/notice_period")
    tsv = folder / "test.tsv"
    tsv.write_text(tsv.read_text().replace("\n5\t", "\n4\t"))  # two rows with index 4: one id twice
    with pytest.raises(HarnessError) as err:
        import_suite("legalbench", str(folder), tmp_path / "out")
    assert f"{tmp_path / 'out'}/notice_period/test.jsonl: field 'id': duplicate id 'notice_period-test-4'" in str(
        err.value)
    assert not (tmp_path / "out").exists()
