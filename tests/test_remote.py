"""`--out` as a URL (harness.run.remote): compares to `file://` and `memory://` URLs with the tiny model.
The URL holds the records, the base model's retention figures and the run folder; with the local
staging folder deleted, a second compare recomputes nothing (the records come from the URL alone);
a record half written at the URL is never trusted; a compare SIGKILLed in the middle of a push
leaves only a temporary name, and the next run completes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.core.errors import HarnessError
from harness.core.records import CellRecord, Retention, from_json, to_json
from harness.model.spec import resolve_model
from harness.run.config import CompareConfig, load_config
from harness.run.plan import make_plan
from harness.run.remote import RemoteOut, is_url, staging_dir
from harness.run.runner import Runner
from harness.strategy.registry import Registry


@pytest.fixture()
def cache(tmp_path, monkeypatch) -> Path:
    """A private harness cache, so the staging folders are this test's own."""
    root = tmp_path / "cache"
    monkeypatch.setenv("HARNESS_CACHE", str(root))
    return root


@pytest.fixture()
def suite_with_retention(tmp_path) -> Path:
    """The mini suite with the built-in `general` retention suite (as in test_crash)."""
    suite = tmp_path / "suite" / "mini"
    shutil.copytree(Path(__file__).parent / "fixtures" / "mini", suite)
    toml = (suite / "suite.toml").read_text().replace('corpus = "corpus/"', 'corpus = "corpus/"\nretention = "general"')
    (suite / "suite.toml").write_text(toml)
    return suite


def compare(suite: Path, model: Path, out: str, strategies: str, *extra: str) -> tuple[int, int, str]:
    """An in-process `harness compare`: (cells, cells reused, output)."""
    result = CliRunner().invoke(app, ["compare", "--suite", str(suite), "--model", str(model), "--out", out,
                                      "--strategies", strategies, "--limit", "2", *extra])
    assert result.exit_code == 0, result.output + repr(result.exception)
    m = re.search(r"(\d+) cells \((\d+) cached\)", result.output)  # in the first line
    assert m, result.output
    return int(m[1]), int(m[2]), result.output.replace("\n", "")  # rich wraps long lines


def remote_files(root: Path) -> dict[str, int]:
    """Relative path -> mtime_ns of every file under a file:// URL's folder."""
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_a_url_out_works_in_its_staging_folder_and_plain_paths_stay_local(cache):
    assert is_url("s3://bucket/reports") and is_url("file:///tmp/x") and not is_url("reports")
    assert not is_url(Path("s3://bucket"))  # a Path is always local
    cfg = CompareConfig(suite="x", out="s3://bucket/reports")
    assert cfg.out_url == "s3://bucket/reports" and cfg.out == staging_dir("s3://bucket/reports")
    assert cfg.out.is_relative_to(cache / "staging")
    assert staging_dir("s3://bucket/reports/") == cfg.out  # a trailing slash names the same folder
    assert CompareConfig.model_validate(cfg.model_dump()) == cfg  # re-validation keeps it
    local = CompareConfig(suite="x", out="reports")
    assert local.out == Path("reports") and local.out_url is None
    with pytest.raises(HarnessError, match="give the URL as `out`"):
        load_config(None, {"suite": "x", "out_url": "s3://bucket/reports"})


def test_unknown_scheme_or_missing_backend_is_an_input_error(mini_suite_dir, tiny_model_dir, cache, tmp_path):
    with pytest.raises(HarnessError, match="Protocol not known: nope"):
        RemoteOut("nope://x").check()
    result = CliRunner().invoke(app, ["compare", "--suite", str(mini_suite_dir), "--model", str(tiny_model_dir),
                                      "--out", "nope://x", "--strategies", "zero-shot"])
    assert isinstance(result.exception, HarnessError) and "nope" in str(result.exception)
    assert not (cache / "staging").exists()  # checked before anything is written


def test_file_url_holds_everything_and_a_fresh_machine_recomputes_nothing(suite_with_retention, tiny_model_dir,
                                                                         cache, tmp_path):
    remote = tmp_path / "remote"
    url = remote.as_uri()
    cells, reused, out = compare(suite_with_retention, tiny_model_dir, url, "zero-shot")
    assert (cells, reused) == (1, 0) and f"report: {url}/mini/" in out
    [record] = (remote / "mini" / "cells").glob("*.json")
    assert from_json(CellRecord, record.read_bytes()).status == "ok"
    [base] = (remote / "mini" / "retention").glob("*.json")  # the base model's retention figures
    assert from_json(Retention, base.read_bytes()).base
    [run] = [d for d in (remote / "mini").iterdir() if (d / "report.json").is_file()]
    for name in ("report.html", "report.md", "records/zero-shot-seed0.json"):
        assert (run / name).is_file(), name
    assert not [p for p in remote.rglob(".*") if p.is_file()]  # no temporary file left at the URL
    before = remote_files(remote)

    shutil.rmtree(cache / "staging")  # another machine: nothing local, only the URL
    cells, reused, out = compare(suite_with_retention, tiny_model_dir, url, "zero-shot,few-shot")
    assert (cells, reused) == (2, 1) and "reused zero-shot" in out
    after = remote_files(remote)
    for name, mtime in before.items():
        assert after[name] == mtime, f"{name} rewritten"  # the record and the base figures came from the URL
    assert len(list((remote / "mini" / "cells").glob("*.json"))) == 2
    runs = [d for d in (remote / "mini").iterdir() if (d / "report.json").is_file()]
    assert len(runs) == 2


def test_memory_url_in_process(mini_suite_dir, tiny_model_dir, cache):
    import fsspec

    fs = fsspec.filesystem("memory")
    url = "memory://harness-test/reports"
    try:
        assert compare(mini_suite_dir, tiny_model_dir, url, "zero-shot", "--seed", "0", "--seed", "1")[:2] == (2, 0)
        assert len(fs.glob("/harness-test/reports/mini/cells/*.json")) == 2
        [report] = fs.glob("/harness-test/reports/mini/*/report.json")
        assert [c["status"] for c in json.loads(fs.cat_file(report))["cells"]] == ["ok", "ok"]
        fs.rm_file(fs.glob("/harness-test/reports/mini/cells/*.json")[0])  # as if its push had failed
        cells, reused, out = compare(mini_suite_dir, tiny_model_dir, url, "zero-shot", "--seed", "0", "--seed", "1")
        assert (cells, reused) == (2, 2) and "1 cached files the URL lacked" in out  # pushed again at the end
        assert len(fs.glob("/harness-test/reports/mini/cells/*.json")) == 2
        shutil.rmtree(cache / "staging")
        assert compare(mini_suite_dir, tiny_model_dir, url, "zero-shot", "--seed", "0", "--seed", "1")[:2] == (2, 2)
    finally:
        if fs.exists("/harness-test"):
            fs.rm("/harness-test", recursive=True)


def test_a_record_half_written_at_the_url_is_never_trusted(mini_suite, tiny_model_dir, cache, tmp_path):
    url = (tmp_path / "remote").as_uri()
    cfg = CompareConfig(suite="mini", strategies=["zero-shot"], limit=2, retention=False, out=url)
    reg = Registry.discover()
    plan = make_plan(cfg, mini_suite, resolve_model(str(tiny_model_dir)), reg, "cpu")
    remote = RemoteOut(url)
    runner = Runner(plan, reg, cfg.out / "mini" / "cells", device="cpu", remote=remote)
    [cell] = plan.cells
    at_url = tmp_path / "remote" / "mini" / "cells" / f"{cell.cell_id}.json"
    assert runner.cached(cell) is None and not runner.record_path(cell).exists()  # nowhere yet
    rec = runner.run_cell(cell)
    blob = to_json(rec)
    at_url.parent.mkdir(parents=True)
    at_url.write_text(blob[: len(blob) // 2])  # what a reader of a non-atomic store could see mid-write
    assert runner.cached(cell) is None  # fetched, fails validation: the cell would be recomputed
    runner.save_record(cell, rec)  # a real push replaces it whole
    assert at_url.read_text() == blob
    runner.record_path(cell).unlink()
    assert runner.cached(cell) == rec  # and a fresh machine reuses it


@pytest.mark.slow
def test_killed_mid_push_leaves_a_temporary_name_and_the_next_run_completes(mini_suite_dir, tiny_model_dir,
                                                                           cache, tmp_path):
    remote = tmp_path / "remote"
    args = [sys.executable, "-m", "harness", "compare", "--suite", str(mini_suite_dir), "--model",
            str(tiny_model_dir), "--out", remote.as_uri(), "--strategies", "zero-shot,few-shot", "--limit", "2"]
    env = {k: v for k, v in os.environ.items() if k != "HARNESS_KILL_AT"}
    killed = subprocess.run(args, env={**env, "HARNESS_KILL_AT": "remote-push:2"}, capture_output=True,
                            text=True, timeout=600)
    assert killed.returncode == -9, killed.stdout + killed.stderr  # SIGKILL while pushing the second record
    cells = remote / "mini" / "cells"
    assert len(list(cells.glob("*.json"))) == 1 and len(list(cells.glob(".*.tmp"))) == 1
    shutil.rmtree(cache / "staging")  # resume on a fresh machine: only the URL survives
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 cells (1 cached)" in done.stdout
    assert len(list(cells.glob("*.json"))) == 2


@pytest.mark.slow
def test_ray_workers_push_their_records_and_a_local_run_reuses_them(mini_suite_dir, tiny_model_dir, cache, tmp_path):
    """Under the Ray executor each worker pushes the record it computed (the driver has none left to
    push); a later local compare from a fresh staging folder recomputes nothing."""
    pytest.importorskip("ray")
    remote = tmp_path / "remote"
    env = {k: v for k, v in os.environ.items() if k != "HARNESS_KILL_AT"}
    proc = subprocess.run([sys.executable, "-m", "harness", "compare", "--suite", str(mini_suite_dir), "--model",
                           str(tiny_model_dir), "--out", remote.as_uri(), "--strategies", "zero-shot,few-shot",
                           "--limit", "2", "--executor", "ray"], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout.replace("\n", "")
    assert "pushed the run folder" in out and "the URL lacked" not in out  # the workers pushed them
    ray_records = {p.name: p.read_bytes() for p in (remote / "mini" / "cells").glob("*.json")}
    assert len(ray_records) == 2
    shutil.rmtree(cache / "staging")
    assert compare(mini_suite_dir, tiny_model_dir, remote.as_uri(), "zero-shot,few-shot")[:2] == (2, 2)
    assert {p.name: p.read_bytes() for p in (remote / "mini" / "cells").glob("*.json")} == ray_records
