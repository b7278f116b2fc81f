"""The model's vocabularies and the item attribute table: what turns ids into indices.

``FeatureSpace`` is fitted on the training history and saved beside the weights, so a
reloaded model encodes new customers, labels and items exactly as in training (anything
unseen → index 0, the unknown slot) without the training config.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch

from segrec.data import IdMap
from segrec.models.config import ModelConfig
from segrec.models.towers import TowerSizes
from segrec.segments import SegmentVocabularies
from segrec.training.sequences import NUMERIC_FEATURES, HistoryReader, PurchaseSequences

PRICE_BAND = "price_band"
_META = "features.json"


@dataclass
class FeatureSpace:
    """Catalog, customer ids, segment vocabularies and item attributes of one model.

    ``item_attributes`` is (len(item_map) + 1, A) int64: column a holds each item's index
    in ``attribute_maps[attributes[a]]`` (price bands: 1..K), row 0 (unknown item) zeros.
    """

    item_map: IdMap
    customer_map: IdMap
    segments: SegmentVocabularies
    attributes: list[str]
    attribute_maps: dict[str, IdMap]
    item_attributes: np.ndarray
    price_edges: list[float]
    history_len: int
    history_items: str = "lines"  # model.history_items
    history_scan: int = 0

    @classmethod
    def fit(
        cls,
        cfg: ModelConfig,
        item_map: IdMap,
        items: pl.DataFrame,
        interactions: pl.DataFrame,
        segment_labels: pl.DataFrame | None,
    ) -> FeatureSpace:
        """Vocabularies from the training history (``interactions``) and the item table."""
        labels = segment_labels if segment_labels is not None else pl.DataFrame({"customer_id": []})
        if cfg.segment_families is not None:
            missing = [f for f in cfg.segment_families if f not in labels.columns]
            if missing:
                raise ValueError(
                    f"model.segment_families: {missing} not among the segment "
                    f"labels {labels.columns[1:]}"
                )
            labels = labels.select("customer_id", *cfg.segment_families)
        catalog = pl.DataFrame({"item_id": item_map.ids}).join(
            items.with_columns(pl.col("item_id").cast(pl.Utf8)),
            on="item_id",
            how="left",
            maintain_order="left",
        )
        names = _attribute_columns(cfg, catalog)
        maps = {a: IdMap.from_values(catalog[a].cast(pl.Utf8)) for a in names}
        columns = [np.concatenate([[0], maps[a].encode(catalog[a].cast(pl.Utf8))]) for a in names]
        edges: list[float] = []
        if cfg.price_bands > 1:
            price = unit_prices(catalog, interactions)
            if np.isfinite(price).any():
                edges = price_edges(price, cfg.price_bands)
                columns.append(np.concatenate([[0], price_band(price, edges)]))
                names.append(PRICE_BAND)
        table = np.stack(columns, axis=1) if columns else np.zeros((len(item_map) + 1, 0))
        return cls(
            item_map=item_map,
            customer_map=IdMap.from_values(interactions["customer_id"]),
            segments=SegmentVocabularies.fit(labels),
            attributes=names,
            attribute_maps=maps,
            item_attributes=table.astype(np.int64),
            price_edges=edges,
            history_len=cfg.history_len,
            history_items=cfg.history_items,
            history_scan=cfg.history_scan,
        )

    def history_reader(self, sequences: PurchaseSequences) -> HistoryReader:
        """How the customer tower's history is read from ``sequences``' lines."""
        items = torch.from_numpy(sequences.items)
        if self.history_items == "lines":
            return HistoryReader(items, self.history_len)
        next_same = torch.from_numpy(sequences.next_same)
        return HistoryReader(items, self.history_len, next_same, self.history_scan)

    @property
    def families(self) -> list[str]:
        return self.segments.families

    def sizes(self) -> TowerSizes:
        n_bands = len(self.price_edges) + 2  # bands 1..len+1, plus the unknown slot
        return TowerSizes(
            n_customers=len(self.customer_map) + 1,
            n_items=len(self.item_map) + 1,
            segment_sizes=list(self.segments.sizes().values()),
            segment_families=list(self.families),
            attribute_sizes=[
                n_bands if a == PRICE_BAND else len(self.attribute_maps[a]) + 1
                for a in self.attributes
            ],
            n_numeric=len(NUMERIC_FEATURES),
        )

    def encode_segments(self, labels: pl.DataFrame | None, customer_ids: pl.Series) -> np.ndarray:
        """(n, F) label indices of ``customer_ids`` in ``labels``; absent customers → 0."""
        n = customer_ids.len()
        if labels is None or not self.families:
            return np.zeros((n, len(self.families)), np.int64)
        frame = pl.DataFrame({"customer_id": customer_ids.cast(pl.Utf8)}).join(
            labels.with_columns(pl.col("customer_id").cast(pl.Utf8)),
            on="customer_id",
            how="left",
            maintain_order="left",
        )
        return self.segments.encode(frame)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.item_map.save(directory / "items.parquet")
        self.customer_map.save(directory / "customers.parquet")
        self.segments.save(directory / "segments")
        for i, a in enumerate(self.attributes):
            if a != PRICE_BAND:
                self.attribute_maps[a].save(directory / f"attribute_{i:02d}.parquet")
        np.save(directory / "item_attributes.npy", self.item_attributes)
        meta = {
            "attributes": self.attributes,
            "price_edges": self.price_edges,
            "history_len": self.history_len,
            "history_items": self.history_items,
            "history_scan": self.history_scan,
            "numeric_features": list(NUMERIC_FEATURES),
        }
        (directory / _META).write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, directory: Path) -> FeatureSpace:
        meta = json.loads((directory / _META).read_text())
        attributes = meta["attributes"]
        return cls(
            item_map=IdMap.load(directory / "items.parquet"),
            customer_map=IdMap.load(directory / "customers.parquet"),
            segments=SegmentVocabularies.load(directory / "segments"),
            attributes=attributes,
            attribute_maps={
                a: IdMap.load(directory / f"attribute_{i:02d}.parquet")
                for i, a in enumerate(attributes)
                if a != PRICE_BAND
            },
            item_attributes=np.load(directory / "item_attributes.npy"),
            price_edges=meta["price_edges"],
            history_len=meta["history_len"],
            history_items=meta.get("history_items", "lines"),
            history_scan=meta.get("history_scan", 0),
        )


def _attribute_columns(cfg: ModelConfig, catalog: pl.DataFrame) -> list[str]:
    """Configured item attributes, or every non-price column with 2..max values."""
    if cfg.item_attributes is not None:
        missing = [a for a in cfg.item_attributes if a not in catalog.columns]
        if missing:
            raise ValueError(
                f"model.item_attributes: {missing} not in the items table ({catalog.columns[1:]})"
            )
        return list(cfg.item_attributes)
    out = []
    for name in catalog.columns:
        if name in ("item_id", "price") or catalog[name].dtype.is_float():
            continue
        if 2 <= catalog[name].n_unique() <= cfg.max_attribute_values:
            out.append(name)
    return out


def unit_prices(catalog: pl.DataFrame, interactions: pl.DataFrame) -> np.ndarray:
    """Each catalog item's unit price (float64 (n_items,), NaN unknown): the items table's
    ``price`` where given, else the median revenue / quantity of its purchase lines."""
    if "price" in catalog.columns:
        given = catalog["price"].cast(pl.Float64)
    else:
        given = pl.Series("price", [None] * catalog.height, dtype=pl.Float64)
    derived = pl.Series("d", [None] * catalog.height, dtype=pl.Float64)
    if {"revenue", "quantity"} <= set(interactions.columns):
        unit = (
            interactions.filter((pl.col("quantity") > 0) & (pl.col("revenue") > 0))
            .group_by("item_id")
            .agg((pl.col("revenue") / pl.col("quantity")).median().alias("d"))
        )
        derived = catalog.select("item_id").join(
            unit, on="item_id", how="left", maintain_order="left"
        )["d"]
    price = given.fill_null(derived).to_numpy().astype(np.float64)
    price[~(price > 0)] = np.nan
    return price


def price_edges(price: np.ndarray, bands: int) -> list[float]:
    """``bands - 1`` quantile edges of the known prices (log scale is implied by quantiles)."""
    known = price[np.isfinite(price)]
    edges = np.unique(np.quantile(known, np.linspace(0, 1, bands + 1)[1:-1]))
    return [float(e) for e in edges]


def price_band(price: np.ndarray, edges: list[float]) -> np.ndarray:
    """Band 1..len(edges)+1 of each price; 0 where unknown."""
    band = np.searchsorted(np.asarray(edges), price, side="right") + 1
    return np.where(np.isfinite(price), band, 0).astype(np.int64)
