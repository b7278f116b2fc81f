"""``write_bundle``: the last step of the main job, from a trained model to a bundle.

Order matters: the ONNX export and its parity check run first, inside the temporary
directory, so a tower that does not export cleanly fails the job in seconds and leaves no
bundle behind; then the arrays, the index (with its recall), the customers, the ranker and
the segments; the manifest and the rename come last (``segrec.bundle.write``).
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import onnxruntime as ort
import polars as pl

from segrec.bundle import schema as layout
from segrec.bundle.schema import Manifest, TowerInput
from segrec.bundle.write import BundleStaging
from segrec.export.config import ExportConfig
from segrec.export.contents import BundleContents, Saveable, check_contents, with_unknown_row
from segrec.export.index import (
    ID_OFFSET,
    build_index,
    check_recall,
    index_params,
    measure_recall,
)
from segrec.export.onnx_export import OUTPUT, export_copy, export_tower
from segrec.export.parity import (
    ParityReport,
    Runner,
    check_parity,
    history_width,
    parity_rows,
    run_batched,
    torch_runner,
)


@dataclass(frozen=True)
class WrittenBundle:
    """Where the bundle went, its manifest, and seconds spent per step."""

    path: Path
    manifest: Manifest
    seconds: dict[str, float]

    @property
    def model_version(self) -> str:
        return self.manifest.model_version


def write_bundle(root: str | Path, contents: BundleContents, cfg: ExportConfig) -> WrittenBundle:
    """Export, check and publish a bundle under ``root`` (which also gets ``latest``).

    Raises ``ValueError`` listing every problem of ``contents``, ``ParityError`` when ONNX
    and torch disagree, ``RecallError`` when an approximate index misses ``min_recall``;
    in every failure case nothing is published.
    """
    problems = check_contents(contents)
    if problems:
        raise ValueError("write_bundle: bad contents:\n  " + "\n  ".join(problems))
    clock = _Clock()
    spec = list(contents.tower_inputs)
    known = with_unknown_row(spec, contents.customers.inputs)
    with BundleStaging(Path(root), cfg.hash_workers or None) as stage:
        reference, parity, hints = _export_checked_tower(stage, spec, contents, known, cfg, clock)
        customer_vectors = run_batched(reference, known, cfg.batch_size).astype(np.float32)
        clock.lap("customer_vectors")
        _write_customers(stage, contents, known, customer_vectors)
        _write_items(stage, contents)
        clock.lap("write_arrays")
        index_info = _write_index(stage, contents.item_vectors, customer_vectors, cfg)
        clock.lap("index")
        parts = _write_parts(stage, contents)
        clock.lap("ranker_segments")
        tower_info = _tower_info(spec, contents.item_vectors.shape[1], cfg, parity, known)
        if contents.prior_head:
            tower_info["prior_head"] = {
                "length": contents.prior_head,
                "cosine_dim": contents.cosine_dim,
            }
        if contents.head_only_columns:
            tower_info["head_only_columns"] = [int(j) for j in contents.head_only_columns]
        path, manifest = stage.commit(
            tower=tower_info,
            index=index_info,
            contents={
                **parts,
                "n_items": len(contents.item_map),
                "n_customers": len(contents.customers.ids),
            },
            training_config=_jsonable(contents.training_config),
            metrics=_jsonable(contents.metrics),
            export={
                "seconds": dict(clock.seconds),
                "tracer_warnings": hints,
                "config": dataclasses.asdict(cfg),
            },
            update_latest=cfg.update_latest,
        )
        clock.lap("commit")
    return WrittenBundle(path=path, manifest=manifest, seconds=clock.seconds)


def _export_checked_tower(
    stage: BundleStaging,
    spec: list[TowerInput],
    contents: BundleContents,
    known: Mapping[str, np.ndarray],
    cfg: ExportConfig,
    clock: _Clock,
) -> tuple[Runner, ParityReport, list[str]]:
    """Export the tower into the stage and prove it equals torch (``ParityError`` if not).

    Returns the torch runner (the reference the precomputed vectors come from), the parity
    report and the exporter's warnings.
    """
    tower = export_copy(contents.tower)
    rows = parity_rows(spec, known, cfg.parity)
    example = {k: v[-8:] for k, v in rows.feeds.items()}  # random rows: mixed lengths
    path = stage.path(layout.TOWER)
    hints = export_tower(tower, spec, example, path, cfg.opset)
    clock.lap("onnx_export")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    reference = torch_runner(tower, spec)
    parity = check_parity(
        reference,
        lambda f: session.run([OUTPUT], dict(f))[0],
        spec,
        rows,
        cfg.parity,
        cfg.batch_size,
        hints,
    )
    clock.lap("parity")
    return reference, parity, hints


def _tower_info(
    spec: list[TowerInput],
    dim: int,
    cfg: ExportConfig,
    parity: ParityReport,
    known: Mapping[str, np.ndarray],
) -> dict[str, Any]:
    """The manifest's ``tower`` section: the schema serving validates requests against."""
    return {
        "file": layout.TOWER,
        "inputs": [s.to_json() for s in spec],
        "output": OUTPUT,
        "dim": dim,
        "history_len": history_width(spec, known),
        "opset": cfg.opset,
        "parity": parity.to_json(),
    }


def _write_items(stage: BundleStaging, c: BundleContents) -> None:
    c.item_map.save(stage.path(layout.ITEM_IDS))
    np.save(stage.path(layout.ITEM_VECTORS), np.ascontiguousarray(c.item_vectors, np.float32))
    if c.item_attributes is not None:
        order = pl.DataFrame(
            {"item_id": c.item_map.ids, "item_index": np.arange(1, len(c.item_map) + 1)}
        )
        attrs = order.join(
            c.item_attributes.with_columns(pl.col("item_id").cast(pl.Utf8)),
            on="item_id",
            how="left",
            maintain_order="left",
        )
        attrs.write_parquet(stage.path(layout.ITEM_ATTRIBUTES))


def _write_customers(
    stage: BundleStaging, c: BundleContents, known: Mapping[str, np.ndarray], vectors: np.ndarray
) -> None:
    """Ids, tower inputs and vectors (row r = customer index r), features, purchases."""
    ids = c.customers.ids
    ids.save(stage.path(layout.CUSTOMER_IDS))
    np.save(stage.path(layout.CUSTOMER_VECTORS), vectors)
    for name, arr in known.items():
        np.save(stage.path(f"{layout.CUSTOMER_INPUTS}/{name}.npy"), np.ascontiguousarray(arr))
    order = pl.DataFrame({"customer_id": ids.ids, "customer_index": np.arange(1, len(ids) + 1)})
    if c.customers.features is not None:
        features = c.customers.features.with_columns(pl.col("customer_id").cast(pl.Utf8))
        order.join(features, on="customer_id", how="left", maintain_order="left").write_parquet(
            stage.path(layout.CUSTOMER_FEATURES)
        )
    if c.customers.purchases is not None:
        c.customers.purchases.write_parquet(stage.path(layout.PURCHASES))


def _write_index(
    stage: BundleStaging,
    item_vectors: np.ndarray,
    customer_vectors: np.ndarray,
    cfg: ExportConfig,
) -> dict[str, Any]:
    """Build, measure (approximate kinds only: flat *is* exact search) and save the index.

    Recall is measured on customer vectors, the queries the index will actually serve.
    """
    vectors = np.ascontiguousarray(item_vectors[ID_OFFSET:], np.float32)
    start = time.perf_counter()
    index = build_index(vectors, cfg.index)
    build_s = time.perf_counter() - start
    recall: dict[str, Any] = {"k": cfg.index.recall_k, "recall": 1.0, "exact": True}
    if cfg.index.kind != "flat":
        rng = np.random.default_rng(cfg.parity.seed)
        take = rng.choice(
            len(customer_vectors),
            min(cfg.index.recall_queries, len(customer_vectors)),
            replace=False,
        )
        report = measure_recall(index, vectors, customer_vectors[np.sort(take)], cfg.index.recall_k)
        check_recall(report, cfg.index)
        recall = {**report.to_json(), "exact": False}
    faiss.write_index(index, str(stage.path(layout.ITEM_INDEX)))
    return {
        "file": layout.ITEM_INDEX,
        "kind": cfg.index.kind,
        "metric": "inner_product",
        "id_offset": ID_OFFSET,
        "n_items": int(index.ntotal),
        "dim": int(vectors.shape[1]),
        "params": index_params(index, cfg.index),
        "recall": recall,
        "build_seconds": round(build_s, 3),
    }


def _write_parts(stage: BundleStaging, c: BundleContents) -> dict[str, Any]:
    """Ranker and segment vocabularies (opaque files), top items; which ones are present."""
    for part, rel in (
        (c.ranker, layout.RANKER),
        (c.segment_vocabularies, layout.SEGMENT_VOCABULARIES),
    ):
        if part is not None:
            _save_opaque(part, stage.directory(rel))
    if c.top_items is not None:
        c.top_items.write_parquet(stage.path(layout.TOP_ITEMS))
    return {
        "ranker": c.ranker is not None,
        "segment_vocabularies": c.segment_vocabularies is not None,
        "top_items": c.top_items is not None,
        "item_attributes": c.item_attributes is not None,
        "customer_features": c.customers.features is not None,
        "purchases": c.customers.purchases is not None,
    }


def _save_opaque(part: Saveable, directory: Path) -> None:
    """Let the part write its own files, or copy the directory it was saved to."""
    if isinstance(part, Path):
        shutil.copytree(part, directory, dirs_exist_ok=True)
    else:
        part.save(directory)


def _jsonable(value: Any) -> dict[str, Any]:
    """A config or metrics as plain JSON-able dicts: dataclasses (the composed ``Config``)
    and OmegaConf containers are converted, anything else must be a mapping."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    from omegaconf import OmegaConf

    if OmegaConf.is_config(value):
        return dict(OmegaConf.to_container(value, resolve=True))  # type: ignore[arg-type]
    return dict(value)


class _Clock:
    """Seconds per named step, for the manifest and the benchmark."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self._last, 3)
        self._last = now
