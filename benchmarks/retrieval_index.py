"""Index build time and query latency at 100,000 chunks: exact (flat) vs HNSW vs IVF, side by side.

Vectors are 384-d (all-MiniLM-L6-v2's size). Embedding 100,000 chunks on 2 CPU cores takes minutes,
so the index is built over the embeddings of synthetic chunks repeated with small noise (real
embedder output, real geometry), and embedding throughput is measured on its own.
Queries are single (batch 1), as a RAG query arrives; recall@5 of HNSW/IVF is against exact search.

    python benchmarks/retrieval_index.py [--chunks 100000] [--queries 200] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from harness.model.embeddings import embed
from harness.model.retrieval import Chunk, VectorIndex

WORDS = [
    "tenant", "landlord", "deposit", "notice", "days", "crowns", "tribunal", "permit", "licence",
    "supplier", "buyer", "invoice", "penalty", "clause", "agreement", "party", "termination",
    "confidential", "liability", "assignment", "governing", "law", "court", "appeal", "fee",
    "interest", "percent", "month", "year", "registry", "minister", "inspector", "harbour",
    "freight",
]


def synthetic_chunks(n: int, rng: np.random.Generator) -> list[str]:
    return [" ".join(rng.choice(WORDS, size=40)) + f" {int(rng.integers(1, 10_000))} days." for _ in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--base", type=int, default=2_000, help="distinct chunks really embedded")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    texts = synthetic_chunks(args.base, rng)
    embed(texts[:8])  # load the model outside the timing
    t0 = time.perf_counter()
    base = embed(texts)
    embed_per_s = len(texts) / (time.perf_counter() - t0)
    reps = -(-args.chunks // args.base)
    vecs = np.concatenate([base + rng.normal(scale=0.02, size=base.shape) for _ in range(reps)])[: args.chunks]
    vecs = (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)
    chunks = [Chunk(f"c#{i}", f"d{i // 10}", "", 0, 0) for i in range(len(vecs))]
    queries = embed(synthetic_chunks(args.queries, rng))
    rows, exact = [], None
    for kind in ("flat", "hnsw", "ivf"):
        t0 = time.perf_counter()
        index = VectorIndex.build(vecs, list(chunks), kind)
        build_s = time.perf_counter() - t0
        lat = []
        found = []
        for q in queries:
            t1 = time.perf_counter()
            _, idx = index.search(q[None, :], 5)
            lat.append(time.perf_counter() - t1)
            found.append(set(idx[0].tolist()))
        exact = exact or found
        recall = float(np.mean([len(f & e) / 5 for f, e in zip(found, exact, strict=True)]))
        rows.append({"index": kind, "build_s": round(build_s, 2), "query_p50_ms": round(1000 * np.median(lat), 3),
                     "query_p95_ms": round(1000 * np.percentile(lat, 95), 3), "recall@5_vs_exact": round(recall, 3)})
    result = {"chunks": len(vecs), "dim": int(vecs.shape[1]), "embed_chunks_per_s": round(embed_per_s, 1),
              "cpus": os.cpu_count(), "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "retrieval_index.json").write_text(json.dumps(result, indent=1))
    md = [f"{len(vecs):,} chunks x {vecs.shape[1]} dims, {os.cpu_count()} CPUs; embedding "
          f"{embed_per_s:.0f} chunks/s (all-MiniLM-L6-v2)", "",
          "| index | build s | query p50 ms (k=5) | query p95 ms | recall@5 vs exact |", "|---|---|---|---|---|"]
    md += [f"| {r['index']} | {r['build_s']} | {r['query_p50_ms']} | {r['query_p95_ms']} | {r['recall@5_vs_exact']} |"
           for r in rows]
    (args.out / "retrieval_index.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
