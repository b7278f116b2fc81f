"""Read, validate and assemble the three input tables into one ``RetailData``.

The output has canonical names and types, whatever the input looked like:

- interactions: customer_id, item_id (str), timestamp (datetime[us]), quantity, revenue
  (float64; revenue null where unknown), basket_id (str)
- customers: customer_id + attribute columns; every purchasing customer has a row
- items: item_id + attribute columns (+ price); every purchased item has a row
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from segrec.data.config import DataConfig, TableConfig
from segrec.data.read import scan_table
from segrec.data.validate import (
    ID_COLUMNS,
    MERGED,
    PROBLEM_SCHEMA,
    ROW,
    Check,
    DataValidationError,
    check_column,
    column_checks,
    describe,
    duplicate_checks,
    find_problems,
    parse_number,
    parse_timestamp,
    raw,
    text,
)

REQUIRED = {
    "interactions": ("customer_id", "item_id", "timestamp"),
    "customers": ("customer_id",),
    "items": ("item_id",),
}
OPTIONAL = {
    "interactions": ("quantity", "revenue", "price", "basket_id"),
    "customers": (),
    "items": ("price",),
}
ON_BAD_ROWS = ("error", "quarantine")


@dataclass
class TableReport:
    """What happened to one table: rows read and kept, and why the others were not."""

    name: str
    file: str
    rows_read: int
    rows_kept: int
    rejected: dict[str, int] = field(default_factory=dict)
    exact_duplicates_merged: int = 0
    rejects_file: str | None = None


@dataclass
class RetailData:
    """The validated input: three canonical tables and an account of the ingestion."""

    interactions: pl.DataFrame
    customers: pl.DataFrame
    items: pl.DataFrame
    tables: list[TableReport]
    notes: list[str]

    @property
    def customer_attributes(self) -> list[str]:
        return [c for c in self.customers.columns if c != "customer_id"]

    @property
    def item_attributes(self) -> list[str]:
        return [c for c in self.items.columns if c != "item_id"]


@dataclass
class _Parsed:
    kind: str
    cfg: TableConfig
    frame: pl.DataFrame
    problems: pl.DataFrame
    bad: pl.Series
    merged: pl.Series  # exact duplicate rows, merged into their first occurrence


def _parse(kind: str, cfg: TableConfig, extra_attributes: dict[str, str]) -> pl.LazyFrame:
    """Scan the table and parse every mapped column, keeping raw text for messages."""
    mapping = {c: cfg.columns.get(c, c) for c in REQUIRED[kind]}
    mapping |= {c: cfg.columns[c] for c in OPTIONAL[kind] if c in cfg.columns}
    unknown = set(cfg.columns) - set(REQUIRED[kind]) - set(OPTIONAL[kind])
    if unknown:
        raise ValueError(
            f"data.{kind}.columns: unknown canonical name(s) {sorted(unknown)}; "
            f"expected some of {list(REQUIRED[kind] + OPTIONAL[kind])}"
        )
    attributes = cfg.attributes | extra_attributes
    lf = scan_table(cfg, [*mapping.values(), *attributes.values()])
    schema = lf.collect_schema()
    exprs: list[pl.Expr] = [pl.col(ROW)]
    for canon, src in mapping.items():
        dtype = schema[src]
        kept_raw = text(pl.col(src)) if dtype == pl.Utf8 else pl.col(src)
        if canon in ID_COLUMNS:
            # Ids are text; numbers are spelt out as they are (no blanks to strip).
            exprs.append((kept_raw if dtype == pl.Utf8 else pl.col(src).cast(pl.Utf8)).alias(canon))
            continue
        if canon == "timestamp":
            parsed = parse_timestamp(src, dtype, cfg.timestamp_format)
        else:
            parsed = parse_number(src, dtype)
        exprs += [parsed.alias(canon), kept_raw.alias(raw(canon))]
    for name, src in attributes.items():
        exprs.append((text(pl.col(src)) if schema[src] == pl.Utf8 else pl.col(src)).alias(name))
    return lf.with_row_index(ROW, offset=1).select(exprs)


def _validate(
    kind: str,
    cfg: TableConfig,
    extra_attributes: dict[str, str] | None = None,
    known_items: pl.Series | None = None,
) -> _Parsed:
    """Parse one table and evaluate its checks in the same pass; nothing is removed yet."""
    lf = _parse(kind, cfg, extra_attributes or {})
    columns = lf.collect_schema().names()
    checks: list[Check] = []
    for canon in (*REQUIRED[kind], *OPTIONAL[kind]):
        if canon in columns:
            checks += column_checks(canon, required=canon in REQUIRED[kind] or canon == "quantity")
    merged = pl.lit(False)
    id_col = REQUIRED[kind][0]
    if kind != "interactions":
        attrs = [c for c in columns if c != ROW and c != id_col and not c.endswith("__raw")]
        conflict, merged = duplicate_checks(id_col, attrs)
        checks.append(conflict)
    if known_items is not None:
        checks.append(
            Check(
                "item_id",
                "item_id not in the items table",
                pl.col("item_id").is_not_null() & ~pl.col("item_id").is_in(known_items.implode()),
            )
        )
    frame = lf.with_columns(
        *[c.bad.fill_null(False).alias(check_column(i)) for i, c in enumerate(checks)],
        merged.fill_null(False).alias(MERGED),
    ).collect()
    source = {c: cfg.columns.get(c, c) for c in (*REQUIRED[kind], *OPTIONAL[kind])}
    problems, bad = find_problems(frame, checks, table=kind, file=cfg.path, source=source)
    merged_rows = frame[MERGED]
    frame = frame.drop(MERGED, *[check_column(i) for i in range(len(checks))])
    return _Parsed(kind, cfg, frame, problems, bad, merged_rows)


def _write_rejects(parsed: _Parsed, directory: Path) -> str:
    """Write each rejected row, as read, with all its reasons, to ``<table>.rejects.csv``."""
    reasons = parsed.problems.group_by("row", maintain_order=True).agg(
        pl.col("reason").str.join("; ").alias("reasons"),
        pl.col("column").unique(maintain_order=True).str.join("; ").alias("columns"),
    )
    columns = [c for c in parsed.frame.columns if c != ROW and not c.endswith("__raw")]
    source = parsed.cfg.columns
    values = parsed.frame.filter(parsed.bad).select(
        pl.col(ROW).cast(pl.Int64).alias("row"),
        *[
            pl.col(raw(c) if raw(c) in parsed.frame.columns else c)
            .cast(pl.Utf8)
            .alias(source.get(c, c))
            for c in columns
        ],
    )
    out = reasons.join(values, on="row", how="left")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{parsed.kind}.rejects.csv"
    out.write_csv(path)
    return str(path)


def _settle(
    parsed: _Parsed, on_bad_rows: str, rejects_dir: Path | None
) -> tuple[pl.DataFrame, TableReport]:
    """Drop rejected and exactly repeated rows, report both, and return canonical columns."""
    keep = ~(parsed.bad | parsed.merged)
    frame = parsed.frame.filter(keep)
    frame = frame.drop([ROW, *[c for c in frame.columns if c.endswith("__raw")]])
    rejected = dict(parsed.problems.group_by("reason").agg(pl.col("row").n_unique()).iter_rows())
    report = TableReport(
        name=parsed.kind,
        file=parsed.cfg.path,
        rows_read=parsed.frame.height,
        rows_kept=frame.height,
        rejected=rejected,
        exact_duplicates_merged=int(parsed.merged.sum()),
    )
    if parsed.problems.height and on_bad_rows == "quarantine" and rejects_dir is not None:
        report.rejects_file = _write_rejects(parsed, rejects_dir)
    return frame, report


def _most_frequent(
    interactions: pl.DataFrame, key: str, attrs: list[str]
) -> tuple[pl.DataFrame, int]:
    """One row per id with each attribute's most frequent value (ties: smallest value).

    Returns the table and how many ids carried more than one value of some attribute.
    """
    aggs, conflicts = [], []
    for a in attrs:
        counts = interactions.group_by(key, a).len().drop_nulls(a)
        best = counts.group_by(key).agg(
            pl.col(a).sort_by(["len", a], descending=[True, False]).first(),
            pl.len().alias("_values"),
        )
        aggs.append(best.select(key, a))
        conflicts.append(best.filter(pl.col("_values") > 1).select(key))
    table = interactions.select(key).unique().sort(key)
    for part in aggs:
        table = table.join(part, on=key, how="left")
    n_conflicts = pl.concat(conflicts).unique().height if conflicts else 0
    return table, n_conflicts


def load_data(cfg: DataConfig, rejects_dir: Path | None = None) -> RetailData:
    """Read and validate the preset's tables; stop or quarantine on bad rows.

    With ``on_bad_rows: error`` every table is checked first, so that the error lists the
    problems of all of them at once; with ``quarantine`` the rejects go to
    ``rejects_dir/<table>.rejects.csv``.
    """
    if cfg.on_bad_rows not in ON_BAD_ROWS:
        raise ValueError(f"data.on_bad_rows: {cfg.on_bad_rows!r} is not one of {ON_BAD_ROWS}")
    if cfg.on_bad_rows == "quarantine" and rejects_dir is None:
        raise ValueError("data.on_bad_rows=quarantine needs a directory for the rejects file")
    parsed: list[_Parsed] = []
    items_parsed = _validate("items", cfg.items) if cfg.items else None
    customers_parsed = _validate("customers", cfg.customers) if cfg.customers else None
    known_items = None
    if items_parsed is not None:
        ok = items_parsed.frame.filter(~items_parsed.bad)
        known_items = ok["item_id"].drop_nulls().unique()
    derived = cfg.derive_customers | cfg.derive_items
    inter_parsed = _validate("interactions", cfg.interactions, derived, known_items)
    parsed = [p for p in (inter_parsed, customers_parsed, items_parsed) if p is not None]
    problems = (
        pl.concat([p.problems for p in parsed]) if parsed else pl.DataFrame(schema=PROBLEM_SCHEMA)
    )
    if problems.height and cfg.on_bad_rows == "error":
        raise DataValidationError(describe(problems, cfg.max_errors_shown), problems)

    interactions, inter_report = _settle(inter_parsed, cfg.on_bad_rows, rejects_dir)
    reports, notes = [inter_report], []
    customers, items = None, None
    if customers_parsed is not None:
        customers, rep = _settle(customers_parsed, cfg.on_bad_rows, rejects_dir)
        reports.append(rep)
    if items_parsed is not None:
        items, rep = _settle(items_parsed, cfg.on_bad_rows, rejects_dir)
        reports.append(rep)

    if cfg.derive_customers:
        customers, n = _most_frequent(interactions, "customer_id", list(cfg.derive_customers))
        notes.append(
            f"customers table derived from interactions; {n:,} customers had several "
            f"values of an attribute, the most frequent was kept"
        )
    if cfg.derive_items:
        items, n = _most_frequent(interactions, "item_id", list(cfg.derive_items))
        notes.append(
            f"items table derived from interactions; {n:,} items had several values "
            f"of an attribute, the most frequent was kept"
        )
    interactions = interactions.drop(list(derived))
    customers, items = _complete(interactions, customers, items, notes)
    interactions = _finish_interactions(interactions, items, notes)
    return RetailData(interactions, customers, items, reports, notes)


def _complete(
    interactions: pl.DataFrame,
    customers: pl.DataFrame | None,
    items: pl.DataFrame | None,
    notes: list[str],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Give every purchasing customer and purchased item a row (unknown attributes: null)."""
    buyers = interactions.select("customer_id").unique()
    if customers is None:
        customers = buyers
        notes.append("no customers table: customers have no attributes")
    else:
        missing = buyers.join(customers.select("customer_id"), on="customer_id", how="anti")
        if missing.height:
            notes.append(
                f"{missing.height:,} purchasing customers have no row in the customers "
                f"table; their attributes are unknown"
            )
            customers = pl.concat([customers, missing], how="diagonal_relaxed")
    if items is None:
        items = interactions.select("item_id").unique()
        notes.append("no items table: items have no attributes")
    return customers.sort("customer_id"), items.sort("item_id")


def _finish_interactions(
    interactions: pl.DataFrame, items: pl.DataFrame, notes: list[str]
) -> pl.DataFrame:
    """Fill the optional columns: quantity 1, revenue from prices, one basket per visit."""
    cols = interactions.columns
    exprs = []
    if "quantity" not in cols:
        exprs.append(pl.lit(1.0).alias("quantity"))
    if "revenue" not in cols:
        if "price" in cols:
            exprs.append((pl.col("price") * pl.col("quantity")).alias("revenue"))
            notes.append("revenue = price x quantity")
        elif "price" in items.columns:
            interactions = interactions.join(
                items.select("item_id", pl.col("price").alias("_item_price")),
                on="item_id",
                how="left",
            )
            exprs.append((pl.col("_item_price") * pl.col("quantity")).alias("revenue"))
            notes.append("revenue = the items table's price x quantity")
        else:
            exprs.append(pl.lit(None, dtype=pl.Float64).alias("revenue"))
            notes.append(
                "no revenue or price: monetary segments and revenue shares are unavailable"
            )
    if "basket_id" not in cols:
        # A basket is what one customer bought at one moment (one receipt).
        exprs.append(
            pl.concat_str(
                pl.col("customer_id"), pl.lit("@"), pl.col("timestamp").cast(pl.Int64)
            ).alias("basket_id")
        )
    if exprs:
        interactions = interactions.with_columns(exprs)
    return interactions.select(
        "customer_id",
        "item_id",
        "timestamp",
        pl.col("quantity").cast(pl.Float64),
        pl.col("revenue").cast(pl.Float64),
        "basket_id",
    )
