"""Assign every configured family to every customer, as of a date.

``assign_segments`` is the contract the model, the evaluation and the report build on. A
``Segmenter`` holds what some families fit from the data (RFM quantile edges, k-means
centroids and their names), so that the same families can be applied at another date with
the same meaning: the report uses it to follow customers from one period to the next, and
a model can keep the labels it was trained with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from segrec.data import RetailData
from segrec.segments.attribute import assign_attribute, check_attribute
from segrec.segments.config import SegmentsConfig
from segrec.segments.errors import UNKNOWN_LABEL, SegmentConfigError, raise_if
from segrec.segments.history import check_as_of, data_span, window
from segrec.segments.learned import (
    CustomerVectors,
    LearnedModel,
    assign_learned,
    category_spend,
    check_learned,
    fit_learned,
    learned_inputs,
)
from segrec.segments.rfm import RFMEdges, check_rfm, fit_rfm, rfm_labels, rfm_measures, rfm_scores
from segrec.segments.rules import assign_rules, check_rules

KINDS = ("attribute", "rfm", "rules", "learned")


def check_segments(cfg: SegmentsConfig, data: RetailData, interactions: pl.DataFrame) -> list[str]:
    """Every problem of the config against the data, each naming the family and the field."""
    problems: list[str] = []
    seen: dict[str, str] = {}
    for kind in KINDS:
        for name in getattr(cfg, kind):
            if name == "customer_id":
                problems.append(f"segments.{kind}.{name}: 'customer_id' cannot name a family")
            if name in seen:
                problems.append(
                    f"segments.{kind}.{name}: the name is also used in segments.{seen[name]}"
                )
            seen[name] = kind
    if cfg.period_days < 1:
        problems.append(f"segments.period_days: must be >= 1, got {cfg.period_days}")
    has_revenue = bool(interactions["revenue"].is_not_null().any())
    for name, a in cfg.attribute.items():
        problems += check_attribute(name, a, data.customers)
    for name, r in cfg.rfm.items():
        problems += check_rfm(name, r, has_revenue)
    for name, ru in cfg.rules.items():
        problems += check_rules(name, ru, data.items, has_revenue)
    for name, le in cfg.learned.items():
        problems += check_learned(name, le, data.items, has_revenue)
    return problems


def population(data: RetailData, interactions: pl.DataFrame | None = None) -> pl.DataFrame:
    """Every customer of the customers table and of the interactions, with attributes, sorted.

    ``load_data`` gives every purchasing customer a row, but a ``RetailData`` built by hand
    (or a frame passed as ``interactions``) need not, and the contract covers them too.
    """
    rows = data.interactions if interactions is None else interactions
    buyers = rows.lazy().select("customer_id").unique().collect()
    extra = buyers.join(data.customers.select("customer_id"), on="customer_id", how="anti")
    if extra.is_empty():
        return data.customers.sort("customer_id")
    return pl.concat([data.customers, extra], how="diagonal_relaxed").sort("customer_id")


@dataclass
class Segmenter:
    """The configured families plus what they learned from the data at ``fitted_at``."""

    cfg: SegmentsConfig
    fitted_at: datetime
    rfm_edges: dict[str, RFMEdges] = field(default_factory=dict)
    learned: dict[str, LearnedModel] = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        cfg: SegmentsConfig,
        data: RetailData,
        as_of: datetime,
        interactions: pl.DataFrame | None = None,
        vectors: Mapping[str, CustomerVectors] | None = None,
    ) -> Segmenter:
        """Check the config, then fit RFM edges and k-means on history before ``as_of``."""
        return cls.fit_assign(cfg, data, as_of, interactions, vectors)[0]

    @classmethod
    def fit_assign(
        cls,
        cfg: SegmentsConfig,
        data: RetailData,
        as_of: datetime,
        interactions: pl.DataFrame | None = None,
        vectors: Mapping[str, CustomerVectors] | None = None,
    ) -> tuple[Segmenter, pl.DataFrame]:
        """Fit and assign at the same date, reading the history once."""
        segmenter = cls(cfg, as_of)
        return segmenter, segmenter._run(data, as_of, interactions, vectors or {}, fit=True)

    def assign(
        self,
        data: RetailData,
        as_of: datetime,
        interactions: pl.DataFrame | None = None,
        vectors: Mapping[str, CustomerVectors] | None = None,
    ) -> pl.DataFrame:
        """Labels as of ``as_of`` with the fitted edges and clusters (no refitting)."""
        return self._run(data, as_of, interactions, vectors or {}, fit=False)

    def rfm_scores(
        self, name: str, data: RetailData, as_of: datetime, interactions: pl.DataFrame | None = None
    ) -> pl.DataFrame:
        """``customer_id, r, f, m`` of RFM family ``name`` for every customer (null: inactive),
        in the row order of ``assign``'s output."""
        cfg = self.cfg.rfm[name]
        rows = data.interactions if interactions is None else interactions
        active = rfm_measures(window(rows.lazy(), as_of), as_of, cfg.window_days)
        people = population(data, interactions).select("customer_id")
        measures = people.join(active, on="customer_id", how="left", maintain_order="left")
        return rfm_scores(self.rfm_edges[name], measures)

    def _run(
        self,
        data: RetailData,
        as_of: datetime,
        interactions: pl.DataFrame | None,
        vectors: Mapping[str, CustomerVectors],
        fit: bool,
    ) -> pl.DataFrame:
        cfg = self.cfg
        rows = data.interactions if interactions is None else interactions
        span = data_span(data.interactions, rows) if interactions is not None else data_span(rows)
        raise_if(check_segments(cfg, data, rows) + check_as_of(as_of, *span))
        unknown = set(vectors) - set(cfg.learned)
        if unknown:
            raise SegmentConfigError([f"vectors given for {sorted(unknown)}, not learned families"])
        people = population(data, interactions)
        history = window(rows.lazy(), as_of)
        labels = [assign_attribute(n, a, people) for n, a in cfg.attribute.items()]
        labels += self._rfm(people, history, as_of, fit)
        labels += [
            assign_rules(n, ru, people, history, data.items, as_of) for n, ru in cfg.rules.items()
        ]
        labels += self._learned(people, history, data.items, as_of, vectors, fit)
        return people.select("customer_id").with_columns(labels)

    def _rfm(
        self, people: pl.DataFrame, history: pl.LazyFrame, as_of: datetime, fit: bool
    ) -> list[pl.Series]:
        """RFM labels aligned with ``people``; families with the same window share measures."""
        measures: dict[int | None, pl.DataFrame] = {}
        out = []
        for name, r in self.cfg.rfm.items():
            if r.window_days not in measures:
                active = rfm_measures(history, as_of, r.window_days)
                # Aligned with people once; customers without purchases get null measures.
                measures[r.window_days] = people.select("customer_id").join(
                    active, on="customer_id", how="left", maintain_order="left"
                )
            if fit:
                self.rfm_edges[name] = fit_rfm(r, measures[r.window_days].drop_nulls("recency"))
            scores = rfm_scores(self.rfm_edges[name], measures[r.window_days])
            out.append(rfm_labels(name, r, scores)[name].fill_null(UNKNOWN_LABEL))
        return out

    def _learned(
        self,
        people: pl.DataFrame,
        history: pl.LazyFrame,
        items: pl.DataFrame,
        as_of: datetime,
        vectors: Mapping[str, CustomerVectors],
        fit: bool,
    ) -> list[pl.Series]:
        """Learned labels aligned with ``people``; external vectors override the config's."""
        out = []
        for name, le in self.cfg.learned.items():
            given = vectors.get(name)
            if given is None and le.source == "vectors":
                assert le.vectors_path is not None
                given = CustomerVectors.read_parquet(le.vectors_path)
            columns = None if fit else self.learned[name].columns
            spend = None
            if fit or given is None:
                spend = category_spend(le, history, items, people, as_of, columns)
            inputs, rows = learned_inputs(spend, people, given)
            if fit:
                assert spend is not None
                self.learned[name] = fit_learned(name, le, inputs, rows, spend, given is not None)
            out.append(assign_learned(name, self.learned[name], inputs, rows, people.height))
        return out


def assign_segments(
    cfg: SegmentsConfig,
    data: RetailData,
    as_of: datetime,
    interactions: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """``customer_id`` + one Utf8 column per family, as of ``as_of``.

    One row per customer of ``data.customers`` and of the interactions used (default
    ``data.interactions``); only rows with ``timestamp < as_of`` are read; a customer a
    family has no input for is ``unknown`` in it.
    """
    return Segmenter.fit_assign(cfg, data, as_of, interactions)[1]
