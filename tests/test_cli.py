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
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_exits_2_with_one_clear_line_and_writes_nothing(name, tmp_path, mini_suite_dir):
    args, expected = BAD_INPUTS[name]
    (tmp_path / "unknown.toml").write_text('suite = "mini"\ncolour = "red"\n')
    (tmp_path / "badopt.toml").write_text(f'suite = "{mini_suite_dir}"\n[options.few-shot]\nk = -3\n')
    subs = {"mini": str(mini_suite_dir), "cfg_unknown": str(tmp_path / "unknown.toml"),
            "cfg_badopt": str(tmp_path / "badopt.toml")}
    args = [a.format(**subs) for a in args]
    proc = cli("compare", *args, "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("error:")
    assert not (tmp_path / "out").exists()


def test_strategies_lists_builtins_with_options(tmp_path):
    proc = cli("strategies", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for text in ("zero-shot", "few-shot", "k = 6", "selection", "harness"):
        assert text in proc.stdout


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


@pytest.mark.slow
def test_end_to_end_on_the_real_default_model(tmp_path):
    """zero-shot and few-shot on a slice of legal-qa with the embedded SmolLM2-135M-Instruct."""
    out = tmp_path / "reports"
    proc = cli("compare", "--suite", "legal-qa", "--limit", "4", "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [run_dir] = [d for d in (out / "legal-qa").iterdir() if d.name != "cells"]
    from harness.report import load_run

    _, records = load_run(run_dir)
    assert {r.strategy for r in records} >= {"zero-shot", "few-shot"}
    for rec in records:
        assert rec.status == "ok" and rec.model.startswith("smollm2-135m-instruct")
        assert all(t.n == 4 for t in rec.tasks)
        assert any(p.output for p in rec.predictions)  # the model really answered
    html = (run_dir / "report.html").read_text()
    assert "few-shot" in html and "statute-qa" in html
    again = cli("compare", "--suite", "legal-qa", "--limit", "4", "--out", str(out), cwd=tmp_path)
    assert again.returncode == 0 and again.stdout.count("reused") == len(records)
