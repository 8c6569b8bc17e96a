"""ContractNLI with zero-shot, few-shot and RAG: accuracy per strategy and RAG's recall of the gold
evidence spans, read from a `harness compare` run folder; then, with no language model, the same
evidence recall over every test item for three retrievals side by side: the item's own document
(rag's default for items with evidence), the whole corpus, and random chunks of the item's document
(seeded: the floor a retriever must beat).

    harness compare --suite contractnli:../shared/data/contractnli/dev.json \\
        --strategies zero-shot,few-shot,rag --limit 30 --out /tmp/cnli
    python benchmarks/contractnli_rag.py /tmp/cnli/contractnli-dev/<run> --wall-s <seconds the compare took>
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from harness_strategies.rag import Rag

from harness.core.cache import cache_root
from harness.core.records import CellRecord, Prediction, Prompt
from harness.data.catalog import load_suite
from harness.data.evaluation import _meta, retrieval_metrics
from harness.data.suites import Suite
from harness.report import load_run

SOURCE = "contractnli:../shared/data/contractnli/dev.json"
COMMAND = ("harness compare --suite contractnli:../shared/data/contractnli/dev.json "
           "--strategies zero-shot,few-shot,rag --limit 30 --out /tmp/cnli")


def cell_row(rec: CellRecord) -> dict[str, Any]:
    [task] = rec.tasks
    lat = rec.latency
    return {"strategy": rec.strategy, "status": rec.status, "n": task.n, **task.metrics,
            "p50_ms": lat.p50_s * 1000 if lat else None, "prompt_tokens": lat.prompt_tokens_mean if lat else None,
            "adapt_s": rec.adapt.wall_s, "index_build_s": rec.adapt.extras.get("index_build_s"),
            "index_chunks": rec.adapt.extras.get("index_chunks"),
            "predicted": {label: sum(p.output == label for p in rec.predictions) for label in
                          sorted({p.output for p in rec.predictions})}}


def scored(items: list[Any], prompts: list[Prompt]) -> dict[str, float]:
    preds = [Prediction(ex.id, ex.task, "", ex.target, {}, 0.0, 0, 0, meta=_meta(ex, p))
             for ex, p in zip(items, prompts, strict=True)]
    return retrieval_metrics(preds)


def random_chunks(rag: Rag, items: list[Any], seed: int = 0) -> list[Prompt]:
    """`depth` chunks of the item's document drawn at random, in the same meta as rag's."""
    assert rag.index is not None
    rng = np.random.default_rng(seed)
    out = []
    for ex in items:
        pos = rng.permutation(rag.index.positions_of(ex.meta["doc_id"]))[: rag.options.depth]
        chunks = [rag.index.chunks[int(i)] for i in pos]
        meta = {"retrieved": [c.doc_id for c in chunks], "chunks": [c.id for c in chunks[: rag.options.k]],
                "chunk_spans": [[c.start, c.end] for c in chunks], "scope": "document"}
        out.append(Prompt((), meta))
    return out


def retrieval_only(suite: Suite, options: dict[str, Any]) -> dict[str, Any]:
    """Evidence recall of three retrievals over every test item (the index comes from the cache)."""
    task = suite.task("contractnli")
    items = list(task.test)
    rows: dict[str, Any] = {}
    base = Rag(Rag.Options.model_validate(options))
    run: Any = SimpleNamespace(cache_dir=cache_root(), device="cpu")
    t0 = time.perf_counter()
    base.index, _, cached = base._index_for(run, sorted(suite.corpus, key=lambda d: d.id))
    rows["index"] = {"chunks": len(base.index.chunks), "reused": bool(cached),
                     "load_or_build_s": time.perf_counter() - t0}
    for scope in ("document", "corpus"):
        rag = Rag(Rag.Options.model_validate({**options, "scope": scope}))
        rag.index = base.index
        rows[f"scope={scope}"] = scored(items, rag.prompts(run, task, items))
    rows["random chunks of the document (seed 0)"] = scored(items, random_chunks(base, items))
    rows["items"] = len(items)
    rows["items_with_evidence"] = sum(bool(ex.meta["evidence_spans"]) for ex in items)
    return rows


def markdown(res: dict[str, Any]) -> str:
    def f(x: Any, digits: int = 3) -> str:
        return "–" if x is None else f"{x:.{digits}f}" if isinstance(x, float) else str(x)

    k, depth = res["k"], res["depth"]
    keys = [f"evidence_recall@{k}", f"evidence_recall@{depth}", f"evidence_covered@{k}"]
    lines = [f"Command: `{res['command']}` ({res['wall_s']:.0f} s wall, cells computed cold; {res['machine']})", "",
             f"Test items: the first {res['limit']} of the carved test split, from {res['rag_documents']} agreements "
             f"({res['rag_items_with_evidence']} of them with gold evidence). The retrieval-only table below scores "
             "the same retrieval over every test item: the slice is small.", "",
             "| strategy | accuracy | balanced accuracy | " + " | ".join(keys) + " | p50 ms | prompt tok | predicted |",
             "|---|---|---|" + "---|" * len(keys) + "---|---|---|"]
    for r in res["cells"]:
        pred = ", ".join(f"{k2} {v}" for k2, v in r["predicted"].items())
        cost = f" | {f(r['p50_ms'], 0)} | {f(r['prompt_tokens'], 0)} | {pred} |"
        lines.append(f"| {r['strategy']} | {f(r.get('accuracy'))} | {f(r.get('balanced_accuracy'))} | "
                     + " | ".join(f(r.get(m)) for m in keys) + cost)
    ro = res["retrieval_only"]
    lines += ["", f"Retrieval only, every test item ({ro['items']}, {ro['items_with_evidence']} with gold evidence; "
              f"index of {ro['index']['chunks']} chunks, k={k}, depth={depth}):", "",
              "| retrieval | " + " | ".join(keys) + f" | own document recall@1 | own document recall@{depth} |",
              "|---|" + "---|" * (len(keys) + 2)]
    for name, m in ro.items():
        if name.startswith(("scope=", "random")):
            doc = [m.get("recall@1"), m.get(f"recall@{depth}")]
            lines.append(f"| {name} | " + " | ".join(f(v) for v in [*(m.get(key) for key in keys), *doc]) + " |")
    lines += ["", "evidence_recall@n: per item with gold spans, the share of its spans that one of the first n "
              "retrieved chunks of the item's own document overlaps by at least one character; averaged over those "
              "items. evidence_covered@n: the share lying wholly inside those chunks. Own document recall (corpus "
              "scope only: confined retrieval finds it by construction): share of items whose document holds the first "
              "chunk, or one of the first depth."]
    if res["note"]:
        lines += ["", f"Note: {res['note']}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--wall-s", type=float, required=True, help="wall time of the compare command")
    ap.add_argument("--note", default="", help="anything else to record about the run")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    report, records = load_run(args.run_dir)
    rag = next(r for r in records if r.strategy == "rag")
    opts = Rag.Options.model_validate(rag.options)
    res: dict[str, Any] = {
        "command": COMMAND, "wall_s": args.wall_s, "run": report.run_id, "model": report.model, "limit": report.limit,
        "note": args.note,
        "machine": f"{platform.machine()}, 2 CPU cores shared with other jobs (load average about 11), no GPU",
        "k": opts.k, "depth": max(opts.k, opts.depth), "cells": [cell_row(r) for r in records],
        "rag_items_with_evidence": sum(bool(p.meta.get("evidence_spans")) for p in rag.predictions),
        "rag_documents": len({p.meta.get("doc_id") for p in rag.predictions}),
        "retrieval_only": retrieval_only(load_suite(SOURCE), rag.options),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "contractnli_rag.json").write_text(json.dumps(res, indent=1) + "\n")
    (args.out / "contractnli_rag.md").write_text(markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
