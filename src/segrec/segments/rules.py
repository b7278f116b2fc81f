"""Rule families: an ordered list of marketing rules, first match names the customer.

A rule's conditions are ANDed; rules are tried in order, so two rules with the same label
OR their conditions. Every condition's inputs come from one group_by over the history
before as_of, joined once to the customers; nothing loops over customers. A condition that
cannot be decided (spend where the rows carry no revenue) makes the rule undecided, and a
customer whose first undecided rule comes before any matching one is ``unknown``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from segrec.segments.config import RuleConfig, RulesFamilyConfig
from segrec.segments.errors import UNKNOWN_LABEL, where


def _path(name: str, i: int, field: str) -> str:
    return where("rules", name, f"rules[{i}].{field}")


def check_rules(
    name: str, cfg: RulesFamilyConfig, items: pl.DataFrame, has_revenue: bool
) -> list[str]:
    """Problems with this family's config against the items table (empty: fine)."""
    problems = []
    if not cfg.rules:
        problems.append(f"{where('rules', name, 'rules')}: give at least one rule")
    if cfg.otherwise == UNKNOWN_LABEL:
        problems.append(f"{where('rules', name, 'otherwise')}: {UNKNOWN_LABEL!r} is reserved")
    for i, rule in enumerate(cfg.rules):
        problems += _check_rule(name, i, rule, items, has_revenue)
    return problems


def _check_rule(
    name: str, i: int, rule: RuleConfig, items: pl.DataFrame, has_revenue: bool
) -> list[str]:
    problems = []
    if not rule.label or rule.label == UNKNOWN_LABEL:
        problems.append(f"{_path(name, i, 'label')}: give a label other than {UNKNOWN_LABEL!r}")
    conditions = (rule.never_purchased, rule.bought, rule.spent_over, rule.lapsed_days)
    if not any(c is not None and c is not False for c in conditions):
        problems.append(
            f"{where('rules', name, f'rules[{i}]')}: set one of never_purchased, bought, "
            f"spent_over, lapsed_days"
        )
    for field in ("days", "lapsed_days"):
        value = getattr(rule, field)
        if value is not None and value < 1:
            problems.append(f"{_path(name, i, field)}: must be >= 1 or null, got {value}")
    if rule.spent_over is not None and not has_revenue:
        problems.append(f"{_path(name, i, 'spent_over')}: the data has no revenue")
    if rule.bought is not None:
        attr = rule.bought_attribute
        if attr not in items.columns:
            attrs = [c for c in items.columns if c != "item_id"]
            problems.append(
                f"{_path(name, i, 'bought_attribute')}: no item attribute {attr!r}; "
                f"the items table has {attrs}"
            )
        elif not (items[attr].cast(pl.Utf8) == rule.bought).any():
            problems.append(f"{_path(name, i, 'bought')}: no item has {attr} = {rule.bought!r}")
    return problems


def _since(as_of: datetime, days: int | None) -> pl.Expr:
    """Whether a row falls in the last ``days`` before as_of (every row if days is None)."""
    if days is None:
        return pl.lit(True)
    return pl.col("timestamp") >= as_of - timedelta(days=days)


def _aggregations(rules: list[RuleConfig], items: pl.DataFrame, as_of: datetime) -> list[pl.Expr]:
    """Per-customer inputs of every rule, as aggregations of one group_by over the history.

    Columns are named by rule index, so each rule reads its own: ``bought_i``,
    ``spend_i`` / ``priced_i`` / ``lines_i`` and ``recent_i``.
    """
    aggs = [pl.len().alias("_rows")]
    for i, rule in enumerate(rules):
        since = _since(as_of, rule.days)
        if rule.bought is not None:
            ids = items.filter(pl.col(rule.bought_attribute).cast(pl.Utf8) == rule.bought)
            bought = pl.col("item_id").is_in(ids["item_id"].implode()) & since
            aggs.append(bought.any().alias(f"bought_{i}"))
        if rule.spent_over is not None:
            aggs += [
                pl.col("revenue").filter(since).sum().alias(f"spend_{i}"),
                pl.col("revenue").filter(since).count().alias(f"priced_{i}"),
                since.sum().alias(f"lines_{i}"),
            ]
        if rule.lapsed_days is not None:
            aggs.append(_since(as_of, rule.lapsed_days).any().alias(f"recent_{i}"))
    return aggs


def _holds(i: int, rule: RuleConfig) -> pl.Expr:
    """Whether rule ``i`` holds: the AND of its conditions (Kleene: undecided is null).

    Reads the per-customer columns of ``_aggregations``, null for customers with no
    purchase before as_of.
    """
    bought_any = pl.col("_rows").is_not_null()
    conditions = []
    if rule.never_purchased:
        conditions.append(~bought_any)
    if rule.bought is not None:
        conditions.append(pl.col(f"bought_{i}").fill_null(False))
    if rule.spent_over is not None:
        conditions.append(  # no purchase in the window: spent 0; purchases, none priced: null
            pl.when(pl.col(f"lines_{i}").fill_null(0) == 0)
            .then(False)
            .when(pl.col(f"priced_{i}") > 0)
            .then(pl.col(f"spend_{i}") > rule.spent_over)
        )
    if rule.lapsed_days is not None:
        conditions.append(bought_any & ~pl.col(f"recent_{i}").fill_null(False))
    return pl.all_horizontal(conditions)


def assign_rules(
    name: str,
    cfg: RulesFamilyConfig,
    population: pl.DataFrame,
    history: pl.LazyFrame,
    items: pl.DataFrame,
    as_of: datetime,
) -> pl.Series:
    """Labels aligned with ``population``'s rows; ``history`` is the rows before as_of.

    One group_by over the history computes every rule's inputs, one join aligns them.
    """
    per_customer = (
        history.group_by("customer_id").agg(_aggregations(cfg.rules, items, as_of)).collect()
    )
    frame = population.select("customer_id").join(
        per_customer, on="customer_id", how="left", maintain_order="left"
    )
    label: pl.Expr = pl.lit(cfg.otherwise)
    for i, rule in reversed(list(enumerate(cfg.rules))):
        holds = _holds(i, rule)
        label = (
            pl.when(holds)
            .then(pl.lit(rule.label))
            .when(holds.is_null())
            .then(pl.lit(UNKNOWN_LABEL))
            .otherwise(label)
        )
    return frame.select(label.alias(name)).to_series()
