import os
import subprocess
import sys
from pathlib import Path

import pytest


def cli(*args: str, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "200"})


BAD_INPUTS = {
    "unknown suite": (["--suite", "no-such-suite"], "unknown suite 'no-such-suite'"),
    "unknown strategy": (["--suite", "{mini}", "--strategies", "zero-shoot"], "did you mean 'zero-shot'"),
    "unknown model path": (["--suite", "{mini}", "--model", "./no/such/model"], "model not found"),
    "missing gguf": (["--suite", "{mini}", "--model", "x.gguf"], "model file not found"),
    "bad limit": (["--suite", "{mini}", "--limit", "0"], "field 'limit'"),
    "unknown config key": (["--config", "{cfg_unknown}"], "field 'colour'"),
    "bad option value": (["--config", "{cfg_badopt}"], "options.few-shot.k"),
    "missing config": (["--config", "nope.toml"], "config file not found"),
    "no suite": ([], "field 'suite'"),
    "missing plugin": (["--suite", "{mini}", "--plugin", "nope.py"], "plugin file not found"),
    "negative latency limit": (["--suite", "{mini}", "--max-latency-ms", "-5"], "field 'max_latency_ms'"),
    "unknown weight": (["--suite", "{mini}", "--weights", "speed=1"], "weights.speed"),
    "malformed weights": (["--suite", "{mini}", "--weights", "accuracy"], "--weights: 'accuracy'"),
    "unknown decide key": (["--config", "{cfg_decide}"], "field 'max_cost'"),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_exits_2_with_one_clear_line_and_writes_nothing(name, tmp_path, mini_suite_dir):
    args, expected = BAD_INPUTS[name]
    (tmp_path / "unknown.toml").write_text('suite = "mini"\ncolour = "red"\n')
    (tmp_path / "badopt.toml").write_text(f'suite = "{mini_suite_dir}"\n[options.few-shot]\nk = -3\n')
    (tmp_path / "decide.toml").write_text(f'suite = "{mini_suite_dir}"\n[decide]\nmax_cost = 3\n')
    subs = {"mini": str(mini_suite_dir), "cfg_unknown": str(tmp_path / "unknown.toml"),
            "cfg_badopt": str(tmp_path / "badopt.toml"), "cfg_decide": str(tmp_path / "decide.toml")}
    args = [a.format(**subs) for a in args]
    proc = cli("compare", *args, "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("error:")
    assert not (tmp_path / "out").exists()


def test_strategies_lists_builtins_by_family_with_options(tmp_path):
    proc = cli("strategies", "--options", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for text in ("context: change the prompt", "weights: change the model", "zero-shot", "few-shot", "k = 6",
                 "selection", "harness", "rag+lora"):
        assert text in proc.stdout
    assert proc.stdout.index("few-shot") < proc.stdout.index("weights: change the model") < proc.stdout.index("lora")


def test_broken_plugin_is_listed_with_its_error(tmp_path):
    bad = tmp_path / "bad_plugin.py"
    bad.write_text("import no_such_module_anywhere\n")
    proc = cli("strategies", "--plugin", str(bad), cwd=tmp_path)
    assert proc.returncode == 2 and "plugin failed to import" in proc.stderr


def test_suites_lists_and_checks(tmp_path, mini_suite_dir):
    proc = cli("suites", cwd=tmp_path)
    assert proc.returncode == 0 and "legal-qa" in proc.stdout and "general" in proc.stdout
    proc = cli("suites", "check", str(mini_suite_dir), cwd=tmp_path)
    assert proc.returncode == 0 and "qa (short-answer): train 4, dev 1, test 3" in proc.stdout


def test_help_reads_like_a_manual(tmp_path):
    proc = cli("compare", "--help", cwd=tmp_path)
    assert proc.returncode == 0
    for flag in ("--suite", "--model", "--strategies", "--seed", "--limit", "--out", "--config", "--plugin"):
        assert flag in proc.stdout


def run_records(out: Path):
    from harness.report import load_run

    [run_dir] = [d for d in (out / "legal-qa").iterdir() if (d / "report.json").is_file()]
    return run_dir, load_run(run_dir)[1]


@pytest.mark.slow
def test_end_to_end_on_the_real_default_model(tmp_path):
    """Prompting strategies and RAG on a slice of legal-qa with the embedded SmolLM2-135M-Instruct."""
    out = tmp_path / "reports"
    args = ["compare", "--suite", "legal-qa", "--strategies", "zero-shot,few-shot,rag", "--limit", "4",
            "--out", str(out)]
    proc = cli(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir, records = run_records(out)
    assert [r.strategy for r in records] == ["zero-shot", "few-shot", "rag"]
    for rec in records:
        assert rec.status == "ok" and rec.model.startswith("smollm2-135m-instruct")
        assert all(t.n == 4 for t in rec.tasks)
        assert any(p.output for p in rec.predictions)  # the model really answered
        assert rec.retention is not None and rec.retention.suite == "general"
    rag = records[2].tasks[0].metrics
    assert "recall@5" in rag and "mrr" in rag
    html = (run_dir / "report.html").read_text()
    assert "few-shot" in html and "statute-qa" in html and "Forgetting" in html
    again = cli(*args, cwd=tmp_path)
    assert again.returncode == 0 and again.stdout.count("reused") == len(records)


@pytest.mark.slow
def test_both_real_models_end_to_end(tmp_path):
    """The chat model and the base model (Gemma-3-270M: no chat template, BOS added) in one compare: each
    answers, LoRA trains on each, and the report decides between (model, strategy) pairs."""
    config = tmp_path / "run.toml"
    config.write_text('suite = "legal-qa"\nmodels = ["smollm2-135m-instruct", "gemma-3-270m"]\n'
                      'strategies = ["zero-shot", "lora"]\nlimit = 3\n[options.lora]\nmax_steps = 2\neval_every = 2\n')
    out = tmp_path / "reports"
    proc = cli("compare", "--config", str(config), "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir, records = run_records(out)
    assert sorted((r.model.split(":")[0], r.strategy) for r in records) == [
        ("gemma-3-270m", "lora"), ("gemma-3-270m", "zero-shot"),
        ("smollm2-135m-instruct", "lora"), ("smollm2-135m-instruct", "zero-shot")]
    for rec in records:
        assert rec.status == "ok", rec.error
        assert any(p.output.strip() for p in rec.predictions)  # each model really answered
        assert not any("\nQuestion:" in p.output for p in rec.predictions)  # the base model stops at its turn
        assert rec.retention is not None
    md = (run_dir / "report.md").read_text()
    assert "## Model x strategy" in md and "gemma-3-270m/lora" in md


@pytest.mark.slow
def test_weight_strategies_end_to_end_on_the_real_model(tmp_path):
    """lora and qlora (4-bit NF4 on CPU) train a few steps on legal-qa and are evaluated like the rest."""
    config = tmp_path / "run.toml"
    config.write_text('suite = "legal-qa"\nstrategies = ["lora", "qlora"]\nlimit = 3\n'
                      "[options.lora]\nmax_steps = 2\neval_every = 2\n"
                      "[options.qlora]\nmax_steps = 2\neval_every = 2\n")
    out = tmp_path / "reports"
    proc = cli("compare", "--config", str(config), "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _, records = run_records(out)
    for rec in records:
        assert rec.status == "ok", rec.error
        assert rec.adapt.trainable_params == 460_800  # r=8 on q,v of SmolLM2-135M
        assert rec.adapt.extras["train_steps"] == 2 and rec.adapt.curve
        assert rec.retention is not None


@pytest.mark.parametrize("defect", sorted(__import__("test_suites").DEFECTS))
def test_malformed_suite_through_the_cli_exits_2_with_one_line_per_problem(defect, mini_suite_dir, tmp_path,
                                                                          monkeypatch, capsys):
    """Every suite defect of test_suites, through `harness compare` (in process: it stops before any
    model loads): exit 2, `error:` lines naming file, line and field, no traceback, nothing written."""
    import shutil

    from test_suites import DEFECTS

    from harness.cli import main

    mutate, expected = DEFECTS[defect]
    root = shutil.copytree(mini_suite_dir, tmp_path / "suite")
    mutate(root)
    monkeypatch.delenv("HARNESS_DEBUG", raising=False)
    monkeypatch.setattr(sys, "argv", ["harness", "compare", "--suite", str(root), "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit) as exit_:
        main()
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert expected in err.replace("\n", "") and "Traceback" not in err
    assert all(line.startswith(("error:", "... and")) for line in err.splitlines() if line and line[0] != " ")
    assert not (tmp_path / "out").exists()
