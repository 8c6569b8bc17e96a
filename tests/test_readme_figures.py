"""The README's measured figures of the default compare are generated from committed results
(benchmarks/readme_tables.py) and never left stale: the block in README.md equals what the script
makes from reports/example/report.json and benchmarks/results/compare_cold_warm.json."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).parent.parent


def _tables():
    spec = importlib.util.spec_from_file_location("readme_tables", ROOT / "benchmarks" / "readme_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_blocks_are_generated_from_the_committed_example_run():
    t = _tables()
    readme = t.README.read_text()
    assert t.generated(readme) == readme, "stale: python benchmarks/readme_tables.py --write"
    report = json.loads(t.EXAMPLE.read_text())
    picked = report["results"]["decision"]["pick"]
    assert f"**Decision: {picked}**" in readme and f"Decision on these records (no constraints): **{picked}**" in readme


def test_the_example_report_is_a_complete_run():
    folder = ROOT / "reports" / "example"
    report = json.loads((folder / "report.json").read_text())
    assert report["progress"] is None and report["results"]["schema_version"] >= 1  # complete, not partial
    records = list((folder / "records").glob("*.json"))
    assert len(records) == len(report["results"]["arms"]) and (folder / "report.html").stat().st_size > 0
