"""The GPU check's CPU dry mode (benchmarks/gpu_check.py --dry): every section reports pass, fail or
skipped with a reason, the bf16-mixed precision check passes and the pure-bf16 control is caught.
The full check needs a GPU; this keeps every code path of it working where CI runs."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import types
from importlib.machinery import ModuleSpec
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
SECTIONS = {"precision", "broken_control", "train_throughput", "scoring", "generation", "auto_batch",
            "qlora_paged_8bit", "planner", "smollm2"}


@pytest.fixture(scope="module")
def dry_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("gpu-dry")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--dry", "--out", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert (out / "gpu_check_dry.json").is_file(), proc.stdout[-4000:] + proc.stderr[-4000:]
    return json.loads((out / "gpu_check_dry.json").read_text()), (out / "gpu_check_dry.md").read_text(), proc


def test_dry_mode_reports_every_section(dry_report):
    report, table, proc = dry_report
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert report["mode"] == "dry" and report["status"] == "pass"
    assert report["machine"]["torch"] and report["machine"]["transformers"]
    assert report["model"]["status"] == "pass" and report["model"]["parameters"] == report["model"]["formula"]["total"]
    assert set(report["sections"]) == SECTIONS
    for name, section in report["sections"].items():
        assert section["status"] in {"pass", "fail", "skipped"}, name
        if section["status"] == "skipped":
            assert section["reason"], name
    assert table.count("\n| ") >= len(SECTIONS) and "| precision: full-ft | pass |" in table


def test_precision_passes_and_the_pure_bf16_control_is_caught(dry_report):
    sections = dry_report[0]["sections"]
    precision = sections["precision"]
    assert precision["status"] == "pass"
    assert set(precision["strategies"]) == {"norm-bias", "full-ft", "lora"}
    for result in precision["strategies"].values():
        assert result["ok"] and result["trainable_dtypes"] == ["float32"]
    control = sections["broken_control"]
    assert control["status"] == "pass" and control["caught"] is True
    assert control["result"]["ok"] is False and control["result"]["trainable_dtypes"] == ["bfloat16"]


def test_throughput_sections_measure(dry_report):
    sections = dry_report[0]["sections"]
    runs = sections["train_throughput"]["runs"]
    assert set(runs) == {"full-ft", "lora"}
    assert all(r["tokens_per_s"] > 0 and r["mfu"] > 0 and r["batch"] and r["seq"] for r in runs.values())
    assert runs["full-ft"]["profile"]  # the profiler path runs in dry mode too
    for name in ("scoring", "generation", "auto_batch"):
        assert sections[name]["status"] == "pass" and sections[name]["tokens_per_s"] > 0, name
    assert sections["auto_batch"]["chosen_batch"] >= 1
    assert sections["qlora_paged_8bit"]["status"] == "skipped"  # needs CUDA
    assert sections["smollm2"]["status"] == "skipped"  # not looked for in dry mode
    assert sections["planner"]["status"] in {"pass", "skipped"}


def _gpu_check(monkeypatch):
    spec = importlib.util.spec_from_file_location("gpu_check_under_test", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_compare_planner_calls_a_planner_by_its_signature(monkeypatch):
    """Once a planner module lands, compare_planner finds its function and calls it with the arguments
    its signature names."""
    gpu_check = _gpu_check(monkeypatch)
    planner = types.ModuleType("harness.run.planner")
    planner.__spec__ = ModuleSpec("harness.run.planner", None)
    seen = []

    def predict_peak_bytes(config, strategy, batch_size, seq_len, device="cuda"):
        seen.append((config, strategy, batch_size, seq_len, device))
        return 1_100 if strategy == "full-ft" else 2_000

    planner.predict_peak_bytes = predict_peak_bytes
    monkeypatch.setitem(sys.modules, "harness.run.planner", planner)
    measured = [{"strategy": "full-ft", "batch": 4, "seq": 64, "peak_bytes": 1_000},
                {"strategy": "lora", "batch": 4, "seq": 64, "peak_bytes": 1_000}]
    out = gpu_check.compare_planner("cfg", measured, "cuda")
    assert seen[0] == ("cfg", "full-ft", 4, 64, "cuda")
    assert out["status"] == "fail" and [r["ok"] for r in out["runs"]] == [True, False]
    assert out["planner"].endswith("predict_peak_bytes")


def test_no_planner_is_skipped_with_its_reason(monkeypatch):
    gpu_check = _gpu_check(monkeypatch)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if "plan" in name else real(name, *a))
    with pytest.raises(gpu_check.Skip, match="no planner yet"):
        gpu_check.compare_planner(None, [{"strategy": "lora", "batch": 1, "seq": 8, "peak_bytes": 1}], "cuda")
