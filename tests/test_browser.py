"""The report in a real browser: headless Chromium opens a report made from hostile records, and
no script may run while the charts render. Needs Debian's `chromium` (CI installs it); skipped
where it is absent unless HARNESS_REQUIRE_BROWSER=1 (set by CI), which makes its absence a failure."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.core.records import CellRecord, Prediction, TaskResult
from harness.report import write_run

PWN = "document.body.setAttribute('data-pwned','yes')"
HOSTILE = (f"<script>{PWN}</script><img src=x onerror=\"{PWN}\"><svg onload=\"{PWN}\"></svg>"
           f"<a href=\"javascript:{PWN}\">x</a> | **b** [l](javascript:alert(1))")


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("HARNESS_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is required here (HARNESS_REQUIRE_BROWSER=1) but is not installed")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return found


def browse(html: Path, tmp: Path, *mode: str) -> subprocess.CompletedProcess:
    args = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp / 'profile'}",
            "--window-size=1300,2000", *mode, html.as_uri()]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=True)


class Elements(HTMLParser):
    """Every element and its attributes in a page: text, however hostile, is never an element."""

    def __init__(self, page: str):
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def hostile_records() -> list[CellRecord]:
    from test_report import decision_records

    out = []
    for rec in decision_records():
        preds = tuple(replace(p, output=HOSTILE if i % 2 else p.output, target=HOSTILE,
                              example_id=f"{p.example_id}{HOSTILE}") for i, p in enumerate(rec.predictions))
        out.append(replace(rec, suite=HOSTILE, model=HOSTILE, predictions=preds, error=HOSTILE if rec.error else None))
    out[1] = replace(out[1], strategy=HOSTILE)  # few-shot: its name reaches tables, verdicts and charts
    zs = out[0]
    odd = Prediction("odd", HOSTILE, HOSTILE, HOSTILE, {"accuracy": 1.0}, 0.1, 5, 0, meta={"coverage": HOSTILE})
    out[0] = replace(zs, predictions=(*zs.predictions, odd),
                     tasks=(*zs.tasks, TaskResult(HOSTILE, "classification", 1, {"accuracy": 1.0})))
    return out


def test_the_detector_sees_a_script_that_runs(tmp_path: Path):
    """Control: without escaping, the same payload does run, so the next test can tell."""
    page = tmp_path / "raw.html"
    page.write_text(f"<!doctype html><html><body>{HOSTILE}</body></html>")
    body = [a for t, a in Elements(browse(page, tmp_path, "--dump-dom").stdout).found if t == "body"]
    assert body == [{"data-pwned": "yes"}]


def test_hostile_report_runs_no_script_and_shows_its_charts(tmp_path: Path):
    run = tmp_path / "run"
    write_run(run, "run-hostile", hostile_records())
    page = run / "report.html"
    dom = browse(page, tmp_path, "--dump-dom", "--virtual-time-budget=3000").stdout
    assert "Decision: lora" in dom
    elements = Elements(dom).found
    tags = [tag for tag, _ in elements]
    assert "script" not in tags and "img" not in tags and "a" not in tags
    assert not [(t, a) for t, a in elements for k in a if k.startswith("on") or k == "data-pwned"]
    assert not [a for _, a in elements if "javascript:" in (a.get("href") or "")]
    assert sum(1 for t, a in elements if t == "svg" and a.get("class") == "chart") >= 4
    shot = tmp_path / "report.png"
    browse(page, tmp_path, f"--screenshot={shot}")
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
