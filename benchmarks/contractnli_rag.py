"""ContractNLI retrieval: evidence recall of rag's retrievers within each item's document, side by
side, with the time each takes per query; optionally the accuracy of zero-shot, few-shot and rag
read from a `harness compare` run folder.

Retrieval only (no generation): every test item of the shared dev file (the index comes from the
harness cache), each retrieved alone as a served query arrives, for dense, bm25 and hybrid (reciprocal
rank fusion) within the item's document, dense over the whole corpus, random chunks of the document
(seeded: the floor), and the best 3 chunks of the document an oracle could pick (the ceiling that
the chunking leaves). Then the model reranker (rerank = model, the default model's yes/no judgement)
on the first `--rerank-items` items with gold evidence: each pair costs a forward pass of the model,
seconds on 2 CPU cores, so those rows and the first-stage rows beside them cover that slice only.

    python benchmarks/contractnli_rag.py --rerank-items 40 --keep-cells
    python benchmarks/contractnli_rag.py /tmp/cnli/contractnli-dev/<run> --wall-s <seconds the compare took>
      (after: harness compare --suite contractnli:../shared/data/contractnli/dev.json \\
                --strategies zero-shot,few-shot,rag --limit 30 --out /tmp/cnli)
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import statistics
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from harness_strategies.rag import Rag

from harness.core.cache import cache_root
from harness.core.records import CellRecord, Example, Prediction, Prompt
from harness.data.catalog import load_suite
from harness.data.evaluation import retrieval_metrics
from harness.data.kinds.base import prediction_meta
from harness.model.retrieval import evidence_recall, spans_overlap

SOURCE = "contractnli:../shared/data/contractnli/dev.json"
COMPARE = ("harness compare --suite contractnli:../shared/data/contractnli/dev.json "
           "--strategies zero-shot,few-shot,rag --limit 30 --out /tmp/cnli")
KEYS = ("evidence_recall@3", "evidence_recall@5", "evidence_covered@3")


def cell_row(rec: CellRecord) -> dict[str, Any]:
    [task] = rec.tasks
    lat = rec.latency
    return {"strategy": rec.strategy, "status": rec.status, "n": task.n, **task.metrics,
            "p50_ms": lat.p50_s * 1000 if lat else None, "prompt_tokens": lat.prompt_tokens_mean if lat else None,
            "adapt_s": rec.adapt.wall_s, "index_build_s": rec.adapt.extras.get("index_build_s"),
            "index_chunks": rec.adapt.extras.get("index_chunks"),
            "predicted": {label: sum(p.output == label for p in rec.predictions) for label in
                          sorted({p.output for p in rec.predictions})}}


def scored(items: list[Example], prompts: list[Prompt]) -> dict[str, float]:
    preds = [Prediction(ex.id, ex.task, "", ex.target, {}, 0.0, 0, 0, meta=prediction_meta(ex, p))
             for ex, p in zip(items, prompts, strict=True)]
    return {k: v for k, v in retrieval_metrics(preds).items() if k in KEYS}


def served(rag: Rag, run: Any, task: Any, items: list[Example]) -> dict[str, Any]:
    """Each item retrieved alone (one served query); its evidence recall and time per query."""
    rag.prompts(run, task, items[:1])  # warm: the embedder loaded, the first call's allocations made
    prompts, times = [], []
    for ex in items:
        t0 = time.perf_counter()
        [p] = rag.prompts(run, task, [ex])
        times.append(time.perf_counter() - t0)
        prompts.append(p)
    ms = [p.meta["retrieval_s"] * 1000 for p in prompts]
    return {**scored(items, prompts), "retrieval_ms_mean": statistics.fmean(ms),
            "retrieval_ms_p50": statistics.median(ms), "prompts_ms_mean": 1000 * statistics.fmean(times)}


def random_chunks(rag: Rag, items: list[Example], seed: int = 0) -> list[Prompt]:
    """`depth` chunks of the item's document drawn at random, in the same meta as rag's."""
    rng = np.random.default_rng(seed)
    out = []
    for ex in items:
        pos = rng.permutation([i for i, c in enumerate(rag.chunks) if c.doc_id == ex.meta["doc_id"]])[:5]
        chunks = [rag.chunks[int(i)] for i in pos]
        meta = {"retrieved": [c.doc_id for c in chunks], "chunks": [c.id for c in chunks[:3]],
                "chunk_spans": [[c.start, c.end] for c in chunks], "scope": "document"}
        out.append(Prompt((), meta))
    return out


def oracle(rag: Rag, items: list[Example], k: int = 3) -> float:
    """Mean over items with gold spans of the best evidence recall any k chunks of the document reach."""
    best = []
    for ex in items:
        gold = ex.meta["evidence_spans"]  # only chunks touching a gold span can add to the recall
        spans = [(c.start, c.end) for c in rag.chunks if c.doc_id == ex.meta["doc_id"]
                 and any(spans_overlap((c.start, c.end), (int(s), int(e))) for s, e in gold)]
        r = [evidence_recall(gold, list(combo)) for combo in itertools.combinations(spans, min(k, len(spans)))]
        found = [x[0] for x in r if x is not None]
        if found:
            best.append(max(found))
    return statistics.fmean(best)


def retrieval_only(suite: Any, rerank_items: int, rerank_depth: int, runtime: Any) -> dict[str, Any]:
    task = suite.task("contractnli")
    items = list(task.test)
    docs = sorted(suite.corpus, key=lambda d: d.id)
    run: Any = SimpleNamespace(cache_dir=cache_root(), device="cpu", load_base=lambda: runtime)
    rows: dict[str, Any] = {}
    rags = {}
    for name in ("dense", "bm25", "hybrid"):
        rags[name] = Rag(Rag.Options(retriever=name))
        t0 = time.perf_counter()
        _, cached = rags[name]._index_for(run, docs)
        rows[f"index {name}"] = {"chunks": len(rags[name].chunks), "reused": bool(cached),
                                 "load_or_build_s": time.perf_counter() - t0}
        rows[f"{name}, document"] = served(rags[name], run, task, items)
    wide = Rag(Rag.Options(retriever="dense", scope="corpus"))
    wide.index = rags["dense"].index
    rows["dense, whole corpus"] = served(wide, run, task, items)
    rows["random chunks of the document (seed 0)"] = scored(items, random_chunks(rags["dense"], items))
    with_gold = [ex for ex in items if ex.meta["evidence_spans"]]
    rows["oracle: best 3 chunks of the document"] = {"evidence_recall@3": oracle(rags["dense"], with_gold)}
    rows["items"], rows["items_with_evidence"] = len(items), len(with_gold)
    if rerank_items:
        rows["rerank"] = rerank_slice(rags, run, task, with_gold[:rerank_items], rerank_depth)
    return rows


def rerank_slice(rags: dict[str, Rag], run: Any, task: Any, items: list[Example], depth: int) -> dict[str, Any]:
    """First stage and model rerank on the same slice of items with gold evidence."""
    out: dict[str, Any] = {"items": len(items), "rerank_depth": depth}
    for name in ("dense", "bm25", "hybrid"):
        out[name] = served(rags[name], run, task, items)
    for name in ("bm25", "hybrid"):
        rag = Rag(Rag.Options(retriever=name, rerank="model", rerank_depth=depth))
        rag.index, rag.lexical, rag.reranker = rags[name].index, rags[name].lexical, run.load_base()
        out[f"{name} + rerank"] = served(rag, run, task, items)
        print(name, "+ rerank", out[f"{name} + rerank"], flush=True)
    return out


def f(x: Any, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def retrieval_table(rows: dict[str, Any], names: list[str]) -> list[str]:
    lines = ["| retrieval | " + " | ".join(KEYS) + " | retrieval ms per query (mean) | p50 |",
             "|---|" + "---|" * (len(KEYS) + 2)]
    for name in names:
        m = rows[name]
        cells = [*(m.get(key) for key in KEYS), m.get("retrieval_ms_mean"), m.get("retrieval_ms_p50")]
        lines.append(f"| {name} | " + " | ".join(f(v, 3 if i < len(KEYS) else 1) for i, v in enumerate(cells)) + " |")
    return lines


def cells_table(res: dict[str, Any]) -> list[str]:
    keys = ["evidence_recall@3", "evidence_recall@5", "evidence_covered@3"]
    lines = [f"Compare: `{res['compare_command']}` ({res['compare_wall_s']:.0f} s wall, cells computed cold; run "
             f"{res['run']}, "
             f"rag then {res.get('cells_rag', 'dense')}). Test items: the first {res['limit']} of the carved test "
             "split.", "",
             "| strategy | accuracy | balanced accuracy | " + " | ".join(keys) + " | p50 ms | prompt tok | predicted |",
             "|---|---|---|" + "---|" * len(keys) + "---|---|---|"]
    for r in res["cells"]:
        pred = ", ".join(f"{k2} {v}" for k2, v in r["predicted"].items())
        cost = f" | {f(r['p50_ms'], 0)} | {f(r['prompt_tokens'], 0)} | {pred} |"
        lines.append(f"| {r['strategy']} | {f(r.get('accuracy'))} | {f(r.get('balanced_accuracy'))} | "
                     + " | ".join(f(r.get(m)) for m in keys) + cost)
    return lines


def markdown(res: dict[str, Any]) -> str:
    ro = res["retrieval_only"]
    lines = [f"Command: `{res['command']}` ({res['wall_s']:.0f} s wall; {res['machine']}; model {res['model']})", "",
             f"Retrieval only, every test item ({ro['items']}, {ro['items_with_evidence']} with gold evidence; index "
             f"of {ro['index dense']['chunks']} chunks of 120 words, k=3, depth=5), each item retrieved alone:", ""]
    lines += retrieval_table(ro, ["dense, document", "bm25, document", "hybrid, document", "dense, whole corpus",
                                  "random chunks of the document (seed 0)", "oracle: best 3 chunks of the document"])
    if "rerank" in ro:
        rr = ro["rerank"]
        lines += ["", f"With the model reranker (the default model judges the first stage's top "
                  f"{rr['rerank_depth']} chunks), on the first {rr['items']} test items with gold evidence:", ""]
        lines += retrieval_table(rr, ["dense", "bm25", "hybrid", "bm25 + rerank", "hybrid + rerank"])
    lines += ["", "evidence_recall@n: per item with gold spans, the share of its spans that one of the first n "
              "retrieved chunks of the item's own document overlaps by at least one character; averaged over those "
              "items. evidence_covered@3: the share lying wholly inside the first 3 chunks. Retrieval ms: the "
              "`retrieval_s` rag records per query (embedding the query, searching, fusing, and the model's rerank), "
              "each query served alone after one warm-up query."]
    if res.get("cells"):
        lines += ["", *cells_table(res)]
    if res["note"]:
        lines += ["", f"Note: {res['note']}"]
    return "\n".join(lines) + "\n"


def compare_cells(run_dir: Path | None, wall_s: float | None, keep: Path | None) -> dict[str, Any]:
    """The cells of a compare run folder, or those kept from an earlier results file."""
    if run_dir is not None:
        from harness.report import load_run

        report, records = load_run(run_dir)
        rag = next(r for r in records if r.strategy == "rag")
        return {"compare_command": COMPARE, "compare_wall_s": wall_s, "run": report.run_id, "limit": report.limit,
                "cells": [cell_row(r) for r in records], "cells_rag": Rag.Options.model_validate(rag.options).retriever}
    if keep is not None and keep.is_file():
        old = json.loads(keep.read_text())
        return {"compare_command": old.get("compare_command", old["command"]),
                "compare_wall_s": old.get("compare_wall_s", old["wall_s"]), "run": old["run"], "limit": old["limit"],
                "cells": old["cells"], "cells_rag": old.get("cells_rag", "dense")}
    return {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path, nargs="?", help="a compare run folder (its cells go in the table)")
    ap.add_argument("--wall-s", type=float, help="wall time of that compare command")
    ap.add_argument("--keep-cells", action="store_true", help="keep the compare cells of the existing results file")
    ap.add_argument("--rerank-items", type=int, default=40, help="items with evidence for the rerank rows (0: none)")
    ap.add_argument("--rerank-depth", type=int, default=5)
    ap.add_argument("--note", default="", help="anything else to record about the run")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    from harness.model.load import load_runtime
    from harness.model.spec import resolve_model

    t0 = time.perf_counter()
    runtime = load_runtime(resolve_model(None), device="cpu") if args.rerank_items else None
    cells = compare_cells(args.run_dir, args.wall_s, args.out / "contractnli_rag.json" if args.keep_cells else None)
    res: dict[str, Any] = {
        "command": "python benchmarks/contractnli_rag.py " + (f"--rerank-items {args.rerank_items} "
                                                              f"--rerank-depth {args.rerank_depth}"),
        "model": runtime.spec.identity if runtime is not None and runtime.spec else None, "note": args.note,
        "machine": f"{platform.machine()}, 2 CPU cores shared with other jobs, no GPU",
        "retrieval_only": retrieval_only(load_suite(SOURCE), args.rerank_items, args.rerank_depth, runtime),
    }
    res["wall_s"] = time.perf_counter() - t0
    res.update(cells)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "contractnli_rag.json").write_text(json.dumps(res, indent=1) + "\n")
    (args.out / "contractnli_rag.md").write_text(markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
