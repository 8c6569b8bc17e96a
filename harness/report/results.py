"""The machine-readable report: `report.json`'s `results`, from which report.md's and report.html's
decision card, summary and per-task tables are rendered (the templates read this JSON back, not the
Python objects), so a CI gate reading report.json sees exactly the figures a person reads.

Schema (version `RESULTS_VERSION`; every value JSON, NaN written as null):

- `schema_version`: int; bumped when a key below changes meaning or goes away.
- `score`: how the headline score is made; `task_metrics`: task -> its main per-item metric.
- `arms`: one per strategy (per model/strategy pair with several models), best first as in the table:
  - `s`: the summary: `strategy`, `status` (ok, skipped, failed), `reason`, `seeds`, `score`
    (`mean`, `low`, `high` 95% interval, `n_items`, `n_seeds`), `seed_scores`, `seed_spread`,
    `tasks` (task -> score estimate), `forgetting` (`accuracy_pt`, `lost`, `gained`, `ce_delta`:
    estimates; `shared_weights`), `forgetting_pt`, `ce_delta`, latency (`p50_ms`, `p95_ms`,
    `query_s`, `prompt_tokens`), cost inputs (`adapt_s`, `update_s`, `peak_mem_gb`,
    `trainable_params`, `total_params`, `artifact_bytes`, `work`), `budget` (training steps, cap,
    precision, learning rate), `family`, `device`.
  - `cost`: `hardware`, `usd_per_hour`, `adapt_usd`, `usd_per_1k_queries`, `update_usd`, `basis`.
  - `tco_usd`, `front` (on the Pareto front), `picked`.
- `pairs`: every pair of arms that ran: `a`, `b`, `diff`, `low`/`high` (95%), `low90`/`high90`,
  `p_value`, `p_holm` (Holm-adjusted over all pairs), `margin`, `verdict`, `mde`, `n_items`, `n_seeds`.
- `decision`: `pick`, `rationale`, `warnings`, `power`, `tied`, `underpowered`, `front`,
  `constraints` (every constraint, defaults included), `options` (each arm as the decision saw it:
  score and interval, cost, `tco_usd`, `excluded` with the reason, `flags`, `utility`).
- `break_points`: where the pick would change, one constraint swept at a time (harness.decide.sweeps):
  `dimension` (a constraint's name), `value`, `before`, `after` (the picks either side; null: nothing
  qualifies), `explained` (the cost model's break-even or the measured figure that explains it), `reason`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from typing import Any

RESULTS_VERSION = 1
SCORE = ("mean over tasks of each task's main per-item metric; seeds averaged per item; 95% intervals "
         "from a two-level bootstrap (seeds, then items)")


def plain(obj: Any) -> Any:
    """JSON-ready data: dataclass fields plus their properties (the derived figures the tables show),
    pydantic models dumped, tuples as lists, NaN and infinities as None."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        props = [n for n, a in vars(type(obj)).items() if isinstance(a, property)]
        return {**out, **{n: plain(getattr(obj, n)) for n in props}}
    if hasattr(obj, "model_dump"):
        return plain(obj.model_dump())
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
    if type(obj).__module__ == "numpy" and hasattr(obj, "item"):  # a numpy scalar: its Python value
        return plain(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def build(rows: list[Any], pairs: list[tuple[Any, float]], decision: Any, task_metrics: dict[str, str],
          break_points: Sequence[Any] = ()) -> dict[str, Any]:
    """The `results` object from the summary rows, the pairwise comparisons with their Holm p-values, the
    decision and where it would change."""
    return {
        "schema_version": RESULTS_VERSION, "score": SCORE, "task_metrics": dict(task_metrics),
        "arms": plain(rows),
        "pairs": [{**plain(c), "p_holm": plain(q)} for c, q in pairs],
        "decision": plain(decision),
        "break_points": plain(list(break_points)),
    }


class View(dict[str, Any]):
    """A JSON object read with attribute access (`row.s.score.mean`), for templates and view helpers."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def view(data: Any) -> Any:
    """`data` parsed back from its JSON text, objects as `View`s: what the templates render."""
    return json.loads(json.dumps(data), object_hook=View)
