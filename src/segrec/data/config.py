"""Typed configuration of the data stage.

Plain dataclasses (no Hydra import) so that any stage, the serving path included, can read
them. Hydra validates YAML against them at compose time (see ``segrec.conf``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TableConfig:
    """Where one input table lives and how its columns map to segrec's names.

    ``columns`` maps a canonical name (``customer_id``, ``item_id``, ``timestamp``,
    ``quantity``, ``revenue``, ``price``, ``basket_id``) to the column in the file.
    ``attributes`` maps an attribute name (as segrec will call it) to a column in the file;
    attributes feed segments and the model's item/customer features.
    """

    path: str = "???"
    # auto: from the suffix (.parquet, .csv, .csv.gz, .tsv, .zip holding one CSV).
    format: str = "auto"
    # For a zip archive holding several files: which one to read.
    member: str | None = None
    separator: str = ","
    columns: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)
    # strftime format of the timestamp column when it is text; null lets polars infer ISO 8601.
    timestamp_format: str | None = None


@dataclass
class SplitConfig:
    """A global time cutoff: train before validation, validation before test.

    Give ``test_start`` as a date, or leave it null to take the last ``test_days`` days of
    the data. Validation is the ``validation_days`` before the cutoff unless
    ``validation_start`` is given.
    """

    test_start: str | None = None
    test_days: int = 28
    test_end: str | None = None
    validation_start: str | None = None
    validation_days: int = 28


@dataclass
class DataConfig:
    """One data preset: three tables, how to treat bad rows, and the split."""

    name: str = "???"
    interactions: TableConfig = field(default_factory=TableConfig)
    customers: TableConfig | None = None
    items: TableConfig | None = None
    # Attributes repeated on every interaction row (Ta-Feng): name -> interactions column.
    # The customers/items table is then derived, keeping each id's most frequent value.
    derive_customers: dict[str, str] = field(default_factory=dict)
    derive_items: dict[str, str] = field(default_factory=dict)
    # error: stop at the first problems; quarantine: write rejected rows + reasons, go on.
    on_bad_rows: str = "error"
    max_errors_shown: int = 20
    split: SplitConfig = field(default_factory=SplitConfig)
