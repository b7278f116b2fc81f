"""Parse the raw columns of a table and find every bad row, vectorised.

Each check is a polars expression that is true on a bad row; all checks of a table are
evaluated in one pass, so validation costs about one extra scan over the parsed columns.
A problem names the file, the 1-based data row (the header is not counted) and the file's
own column name, and quotes the offending value.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

ROW = "_row"
MERGED = "_merged"
# Canonical column kinds: how each is parsed and checked.
ID_COLUMNS = ("customer_id", "item_id", "basket_id")
NUMERIC_COLUMNS = ("quantity", "revenue", "price")
PROBLEM_SCHEMA = {
    "table": pl.Utf8,
    "file": pl.Utf8,
    "row": pl.Int64,
    "column": pl.Utf8,
    "value": pl.Utf8,
    "reason": pl.Utf8,
}


class DataValidationError(ValueError):
    """Bad rows with ``on_bad_rows: error``; ``problems`` holds every one of them."""

    def __init__(self, message: str, problems: pl.DataFrame) -> None:
        super().__init__(message)
        self.problems = problems


@dataclass(frozen=True)
class Check:
    """One rule: ``bad`` is true on rows that break it; ``column`` is canonical."""

    column: str
    reason: str
    bad: pl.Expr


def check_column(index: int) -> str:
    """Name of the boolean column holding check ``index``'s verdict."""
    return f"_check{index}"


def raw(column: str) -> str:
    """Name under which a column's raw text is kept for error messages."""
    return f"{column}__raw"


def text(expr: pl.Expr) -> pl.Expr:
    """Text with surrounding blanks removed; an empty string becomes null."""
    stripped = expr.cast(pl.Utf8).str.strip_chars()
    return pl.when(stripped.str.len_chars() > 0).then(stripped)


def parse_timestamp(source: str, dtype: pl.DataType, fmt: str | None) -> pl.Expr:
    """Parse a timestamp column to naive microsecond datetimes (UTC if it had a zone)."""
    col = pl.col(source)
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            col = col.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return col.cast(pl.Datetime("us"))
    if dtype == pl.Date:
        return col.cast(pl.Datetime("us"))
    if dtype.is_numeric():
        raise ValueError(f"column {source!r} is numeric; timestamps must be text or datetimes")
    txt = text(col)
    if fmt:
        return txt.str.strptime(pl.Datetime("us"), fmt, strict=False)
    return txt.str.to_datetime(time_unit="us", strict=False)


def parse_number(source: str, dtype: pl.DataType) -> pl.Expr:
    """Parse a numeric column; a value that is not a finite number becomes null."""
    value = pl.col(source) if dtype.is_numeric() else text(pl.col(source))
    number = value.cast(pl.Float64, strict=False)
    return pl.when(number.is_finite()).then(number)


def column_checks(column: str, required: bool) -> list[Check]:
    """The checks a canonical column gets from its kind.

    ``required`` numeric columns (quantity) must be present on every row; optional ones
    (revenue, price) may be empty and then mean 'unknown'.
    """
    parsed, given = pl.col(column), pl.col(raw(column)).is_not_null()
    if column in ID_COLUMNS:
        return [Check(column, f"empty {column}", parsed.is_null())] if required else []
    if column == "timestamp":
        return [
            Check(column, "missing timestamp", ~given),
            Check(column, "unparsable timestamp", given & parsed.is_null()),
        ]
    if column in NUMERIC_COLUMNS:
        checks = [
            Check(column, f"non-numeric {column}", given & parsed.is_null()),
            Check(column, f"negative {column}", parsed < 0),
        ]
        if required:
            checks.insert(0, Check(column, f"missing {column}", ~given))
        return checks
    return []


def find_problems(
    frame: pl.DataFrame,
    checks: list[Check],
    *,
    table: str,
    file: str,
    source: dict[str, str],
) -> tuple[pl.DataFrame, pl.Series]:
    """Collect the problems from the verdict columns; return them and a per-row 'bad' mask.

    ``frame`` holds one boolean column per check (``check_column(i)``), computed in the
    same lazy pass as the parsing. ``source`` maps canonical names to the file's column
    names, which is what the user sees in their file and so what every message names.
    """
    names = [check_column(i) for i in range(len(checks))]
    if not checks:
        return pl.DataFrame(schema=PROBLEM_SCHEMA), pl.Series("bad", [False] * frame.height)
    bad = frame.select(pl.any_horizontal(names).alias("bad")).to_series()
    if not bad.any():
        return pl.DataFrame(schema=PROBLEM_SCHEMA), bad
    parts = []
    for name, check in zip(names, checks, strict=True):
        hit = frame[name]
        if not hit.any():
            continue
        value_col = raw(check.column) if raw(check.column) in frame.columns else check.column
        parts.append(
            frame.filter(hit).select(
                pl.lit(table).alias("table"),
                pl.lit(file).alias("file"),
                pl.col(ROW).cast(pl.Int64).alias("row"),
                pl.lit(source.get(check.column, check.column)).alias("column"),
                pl.col(value_col).cast(pl.Utf8).alias("value"),
                pl.lit(check.reason).alias("reason"),
            )
        )
    return pl.concat(parts).sort("row", maintain_order=True), bad


def duplicate_checks(id_column: str, attributes: list[str]) -> tuple[Check, pl.Expr]:
    """A check for ids repeated with different attributes, and a mask of exact repeats.

    The first row of an id is kept; a later row that repeats it exactly is merged (and
    counted), while a later row that disagrees is a problem pointing at the first.
    """
    first = pl.col(ROW).min().over(id_column)
    later = pl.col(id_column).is_not_null() & (pl.col(ROW) != first)
    variants = pl.struct(attributes).n_unique().over(id_column) if attributes else pl.lit(1)
    conflict = Check(id_column, "duplicate id with conflicting attributes", later & (variants > 1))
    return conflict, later & (variants == 1)


def describe(problems: pl.DataFrame, limit: int) -> str:
    """A readable list of the first ``limit`` problems and the totals per reason."""
    lines = [
        f"{p['file']} row {p['row']}, column {p['column']!r}: {p['reason']}"
        + (f" (value {p['value']!r})" if p["value"] is not None else "")
        for p in problems.head(limit).iter_rows(named=True)
    ]
    counts = problems.group_by("table", "reason").len().sort("len", descending=True)
    totals = ", ".join(
        f"{r['table']}: {r['reason']} x{r['len']:,}" for r in counts.iter_rows(named=True)
    )
    more = f"\n  ... and {problems.height - limit:,} more" if problems.height > limit else ""
    return (
        f"{problems.height:,} bad row(s) [{totals}]\n  "
        + "\n  ".join(lines)
        + more
        + "\nFix the data, or set data.on_bad_rows=quarantine to set these rows aside."
    )
