"""Export and serving-engine speed: the bundle writer, the ONNX tower, the FAISS index.

    python bench/export.py [--threads 1] [--hnsw-1m]

Three tables, each with its baseline measured in the same run:
1. Export time per step and bundle size for the real two-tower architecture (default
   ModelConfig, untrained: export cost does not depend on the weights' values) at the item
   and customer counts of Ta-Feng and Complete Journey, with random valid customer inputs;
   and how long ``read_bundle`` takes to verify every checksum.
2. Customer tower latency, ONNX Runtime vs torch eager, same inputs and threads, at batch 1
   and 1,024.
3. FAISS exact (IndexFlatIP) vs IVF and HNSW at the item counts of both datasets and 1M:
   build time, latency per query at batch 1 (``--threads`` threads, as a serving worker)
   and at batch 256 (all cores), recall@20 vs exact over those 256 queries. The vectors
   are synthetic, not trained: a mixture of 500 Gaussian clusters in the model's
   dimension, L2-normalised like the model's, with same-cluster cosine ≈ 0.5; queries come
   from the same mixture. HNSW over 1M items takes many minutes to build on a small
   machine: only with --hnsw-1m.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import polars as pl
import torch

from segrec.bundle import read_bundle
from segrec.data import IdMap
from segrec.export import BundleContents, ExportConfig, KnownCustomers, write_bundle
from segrec.export.config import IndexConfig
from segrec.export.index import build_index, index_params, measure_recall
from segrec.export.onnx_export import export_copy
from segrec.export.parity import random_feeds, torch_runner
from segrec.export.two_tower import CustomerEncoder
from segrec.models import ModelConfig, TowerSizes, TwoTower

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, markdown

# Item and customer counts of the real datasets (../shared/datasets/README.md).
DATASETS = {"Ta-Feng": (23_812, 32_266), "Complete Journey": (92_331, 2_469)}
CATALOGS = {"Ta-Feng": 23_812, "Complete Journey": 92_331, "1M synthetic": 1_000_000}
SEGMENT_SIZES = [9, 12, 6, 11]  # four families, a handful of labels each
DIM = ModelConfig().dim
K = 20
N_QUERIES = 256  # per FAISS batch and recall estimate (256 x 20 neighbours)


def latency_ms(fn: Callable[[], Any], repeat: int, warmup: int = 2) -> tuple[float, float]:
    """Median and p90 wall milliseconds of ``fn`` over ``repeat`` calls, after a warm-up."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(1e3 * (time.perf_counter() - start))
    times.sort()
    return statistics.median(times), times[int(0.9 * (len(times) - 1))]


def two_tower(n_items: int, n_customers: int) -> CustomerEncoder:
    """The real architecture (default ModelConfig) sized for a dataset, untrained."""
    torch.manual_seed(0)
    sizes = TowerSizes(
        n_customers=n_customers + 1,
        n_items=n_items + 1,
        segment_sizes=SEGMENT_SIZES,
        attribute_sizes=[],
        n_numeric=4,
    )
    return CustomerEncoder(TwoTower(ModelConfig(), sizes).eval())


def contents_for(n_items: int, n_customers: int) -> BundleContents:
    """Bundle contents at a dataset's size: known customers with random valid inputs."""
    encoder = two_tower(n_items, n_customers)
    spec = encoder.input_spec()
    history = ModelConfig().history_len
    like = {
        s.name: np.zeros((1, *[history if d == "history" else d for d in s.shape[1:]]))
        for s in spec
    }
    inputs = random_feeds(spec, like, n_customers, np.random.default_rng(0))
    inputs["customer"] = np.arange(1, n_customers + 1)
    with torch.no_grad():
        item_vectors = encoder.model.item_vectors().numpy()
    return BundleContents(
        tower=encoder,
        tower_inputs=spec,
        item_map=IdMap(pl.Series([f"i{i:07d}" for i in range(n_items)])),
        item_vectors=item_vectors,
        customers=KnownCustomers(
            ids=IdMap(pl.Series([f"c{i:07d}" for i in range(n_customers)])), inputs=inputs
        ),
    )


def bench_export(workdir: Path) -> tuple[str, Path, torch.nn.Module]:
    """Table 1, and the Ta-Feng-sized bundle and its torch tower for table 2."""
    rows: list[list[Any]] = []
    first: tuple[Path, torch.nn.Module] | None = None
    for name, (n_items, n_customers) in DATASETS.items():
        contents = contents_for(n_items, n_customers)
        start = time.perf_counter()
        written = write_bundle(workdir / name.replace(" ", "_"), contents, ExportConfig())
        total = time.perf_counter() - start
        size = sum(e.bytes for e in written.manifest.files.values()) / 2**20
        start = time.perf_counter()
        read_bundle(written.path)
        verify = time.perf_counter() - start
        s, parity = written.seconds, written.manifest.tower["parity"]
        rows.append([
            name, f"{n_items:,}", f"{n_customers:,}", f"{total:.2f}", f"{s['onnx_export']:.2f}",
            f"{s['parity']:.2f}", f"{parity['n_checks']:,} / {parity['max_abs_diff']:.1e}",
            f"{s['customer_vectors']:.2f}", f"{s['index']:.2f}", f"{s['commit']:.2f}",
            f"{size:.1f}", f"{verify:.2f} ({size / verify:.0f} MiB/s)",
        ])  # fmt: skip
        first = first or (written.path, contents.tower)
    headers = [
        "catalog", "items", "known customers", "export s", "ONNX export s", "parity s",
        "parity checks / max diff", "customer vectors s", "index s", "hash + rename s",
        "bundle MiB", "read_bundle s (verify)",
    ]  # fmt: skip
    assert first is not None
    return markdown(headers, rows), *first


def bench_tower(bundle_path: Path, tower: torch.nn.Module, threads: int) -> str:
    """Table 2: torch eager vs ONNX Runtime on the same tower, same inputs, same threads."""
    torch.set_num_threads(threads)
    bundle = read_bundle(bundle_path)
    spec = bundle.tower_inputs
    run_torch = torch_runner(export_copy(tower), spec)
    session = bundle.tower(threads=threads)
    raw = session._session  # the bare ONNX Runtime call, without segrec's input checks
    rows = []
    for batch in (1, 1024):
        feeds = random_feeds(spec, bundle.customer_inputs, batch, np.random.default_rng(batch))
        repeat = 300 if batch == 1 else 20
        t_ms, t_p90 = latency_ms(lambda f=feeds: run_torch(f), repeat)
        o_ms, o_p90 = latency_ms(lambda f=feeds: raw.run(None, f), repeat)
        c_ms, _ = latency_ms(lambda f=feeds: session(f), repeat)
        rows.append([
            batch, f"{t_ms:.3f} / {t_p90:.3f}", f"{o_ms:.3f} / {o_p90:.3f}", f"{c_ms:.3f}",
            f"{t_ms / o_ms:.2f}x", f"{1e3 * batch / o_ms:,.0f}",
        ])  # fmt: skip
    headers = [
        "batch", "torch ms (p50 / p90)", "ONNX Runtime ms (p50 / p90)",
        "ORT + input checks ms", "torch / ORT", "ORT customers/s",
    ]  # fmt: skip
    return markdown(headers, rows)


def clustered(n: int, seed: int, centres: np.ndarray) -> np.ndarray:
    """L2-normalised points around ``centres`` (unit norm), noise of norm ≈ 1, by chunks."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, centres.shape[1]), np.float32)
    for start in range(0, n, 200_000):
        m = min(200_000, n - start)
        noise = rng.standard_normal((m, centres.shape[1])) / np.sqrt(centres.shape[1])
        x = centres[rng.integers(0, len(centres), m)] + noise
        out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def _search_ms(index: Any, queries: np.ndarray, threads: int, repeat: int) -> float:
    faiss.omp_set_num_threads(threads)
    try:
        return latency_ms(lambda: index.search(queries, K), repeat, warmup=1)[0]
    finally:
        faiss.omp_set_num_threads(CORES)


def bench_faiss(threads: int, hnsw_1m: bool) -> str:
    """Table 3: per catalog size and index kind, build, latency and recall@20 vs exact."""
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((500, DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    queries = clustered(N_QUERIES, 2, centres)
    kinds = {
        "flat": IndexConfig(),
        "ivf": IndexConfig(kind="ivf", nprobe=16),
        "hnsw": IndexConfig(kind="hnsw", hnsw_m=16, ef_construction=64, ef_search=64),
    }
    rows = []
    for label, n in CATALOGS.items():
        vectors = clustered(n, 3, centres)
        exact_one = kth = None
        for kind, cfg in kinds.items():
            if kind == "hnsw" and n >= 1_000_000 and not hnsw_1m:
                rows.append([label, f"{n:,}", "hnsw", "not run (--hnsw-1m)", "", "", "", ""])
                continue
            start = time.perf_counter()
            index = build_index(vectors, cfg)
            build = time.perf_counter() - start
            one = _search_ms(index, queries[:1], threads, 50)
            many = _search_ms(index, queries, CORES, 1)
            if kind == "flat":
                exact_one = one
                kth = index.search(queries, K)[0][:, -1]
            recall = measure_recall(index, vectors, queries, K, kth=kth).recall
            params = ", ".join(f"{k}={v}" for k, v in index_params(index, cfg).items())
            rows.append([
                label, f"{n:,}", f"{kind} ({params or 'exact'})", f"{build:.1f}",
                f"{one:.3f}", f"{many / len(queries):.4f}", f"{exact_one / one:.1f}x",
                f"{recall:.3f}",
            ])  # fmt: skip
    headers = [
        "catalog", "items", "index", "build s", "ms/query (batch 1)",
        f"ms/query (batch {N_QUERIES})", "speed-up vs exact (batch 1)", f"recall@{K} vs exact",
    ]  # fmt: skip
    return markdown(headers, rows)


CORES = faiss.omp_get_max_threads()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="threads of a serving call")
    parser.add_argument("--hnsw-1m", action="store_true", help="also build HNSW over 1M items")
    args = parser.parse_args()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"Machine: {machine()}; load average {load} (shared). Threads per call: "
        f"{args.threads} (torch, ONNX Runtime, FAISS batch 1); FAISS batches and builds: "
        f"{CORES}. d = {DIM}.\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        export_table, bundle_path, tower = bench_export(Path(tmp))
        print("### Export (real two-tower architecture, untrained weights, flat index)\n")
        print(export_table + "\n")
        print("### Customer tower: ONNX Runtime vs torch eager (Ta-Feng-sized tower)\n")
        print(bench_tower(bundle_path, tower, args.threads) + "\n")
    print(f"### FAISS: exact vs approximate, k = {K} (synthetic clustered vectors)\n")
    print(bench_faiss(args.threads, args.hnsw_1m))


if __name__ == "__main__":
    main()
