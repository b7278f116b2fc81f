"""Every validation path names the file, the row and the column of the problem."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest

from segrec.data import DataConfig, DataFileError, DataValidationError, TableConfig, load_data

COLUMNS = {
    "customer_id": "cust",
    "item_id": "sku",
    "timestamp": "ts",
    "quantity": "qty",
    "revenue": "value",
}


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def config(
    tmp_path: Path,
    interactions: str,
    items: str | None = None,
    customers: str | None = None,
    **kwargs: object,
) -> DataConfig:
    cfg = DataConfig(
        name="t",
        interactions=TableConfig(path=write(tmp_path / "i.csv", interactions), columns=COLUMNS),
        **kwargs,  # type: ignore[arg-type]
    )
    if items is not None:
        cfg.items = TableConfig(
            path=write(tmp_path / "items.csv", items),
            columns={"item_id": "sku", "price": "price"},
            attributes={"category": "cat"},
        )
    if customers is not None:
        cfg.customers = TableConfig(
            path=write(tmp_path / "c.csv", customers),
            columns={"customer_id": "cust"},
            attributes={"region": "region"},
        )
    return cfg


GOOD = "cust,sku,ts,qty,value\nA,x,2024-01-01,1,2.5\nB,y,2024-01-02,2,4\n"


def single_problem(cfg: DataConfig) -> dict[str, object]:
    with pytest.raises(DataValidationError) as info:
        load_data(cfg)
    problems = info.value.problems
    assert problems.height == 1, problems
    return problems.row(0, named=True)


@pytest.mark.parametrize(
    ("row", "column", "reason", "value"),
    [
        ("A,x,2024-01-03,1,1", None, None, None),
        (",x,2024-01-03,1,1", "cust", "empty customer_id", None),
        ("A,  ,2024-01-03,1,1", "sku", "empty item_id", None),
        ("A,x,03/01/2024,1,1", "ts", "unparsable timestamp", "03/01/2024"),
        ("A,x,,1,1", "ts", "missing timestamp", None),
        ("A,x,2024-01-03,two,1", "qty", "non-numeric quantity", "two"),
        ("A,x,2024-01-03,-1,1", "qty", "negative quantity", "-1"),
        ("A,x,2024-01-03,,1", "qty", "missing quantity", None),
        ("A,x,2024-01-03,1,-0.5", "value", "negative revenue", "-0.5"),
        ("A,x,2024-01-03,1,1e", "value", "non-numeric revenue", "1e"),
        ("A,x,2024-01-03,1,inf", "value", "non-numeric revenue", "inf"),
    ],
)
def test_each_interaction_problem_names_file_row_column(
    tmp_path: Path, row: str, column: str | None, reason: str | None, value: str | None
) -> None:
    cfg = config(tmp_path, GOOD + row + "\n")
    if reason is None:
        assert load_data(cfg).interactions.height == 3
        return
    problem = single_problem(cfg)
    assert problem == {
        "table": "interactions",
        "file": str(tmp_path / "i.csv"),
        "row": 3,
        "column": column,
        "value": value,
        "reason": reason,
    }


def test_message_lists_file_row_column_and_totals(tmp_path: Path) -> None:
    bad = "".join(f"A,x,2024-13-{i:02d},1,1\n" for i in range(1, 30))
    cfg = config(tmp_path, GOOD + bad, max_errors_shown=3)
    with pytest.raises(DataValidationError) as info:
        load_data(cfg)
    text = str(info.value)
    assert f"{tmp_path / 'i.csv'} row 3, column 'ts': unparsable timestamp" in text
    assert "29 bad row(s)" in text and "unparsable timestamp x29" in text
    assert "... and 26 more" in text
    assert "row 6," not in text


def test_item_not_in_items_table(tmp_path: Path) -> None:
    cfg = config(tmp_path, GOOD + "A,zz,2024-01-03,1,1\n", items="sku,price,cat\nx,1,a\ny,2,b\n")
    problem = single_problem(cfg)
    assert (problem["row"], problem["column"], problem["value"]) == (3, "sku", "zz")
    assert problem["reason"] == "item_id not in the items table"


def test_conflicting_duplicate_items_and_customers(tmp_path: Path) -> None:
    cfg = config(
        tmp_path,
        GOOD,
        items="sku,price,cat\nx,1,a\ny,2,b\nx,1,a\ny,2,c\n",
        customers="cust,region\nA,north\nA,south\nB,east\n",
    )
    with pytest.raises(DataValidationError) as info:
        load_data(cfg)
    problems = info.value.problems.sort("table")
    assert problems.select("table", "row", "column", "value").rows() == [
        ("customers", 2, "cust", "A"),
        ("items", 4, "sku", "y"),
    ]
    assert set(problems["reason"]) == {"duplicate id with conflicting attributes"}


def test_exact_duplicates_are_merged_and_counted(tmp_path: Path) -> None:
    data = load_data(config(tmp_path, GOOD, items="sku,price,cat\nx,1,a\ny,2,b\nx,1,a\n"))
    assert data.items.height == 2
    items_report = next(t for t in data.tables if t.name == "items")
    assert (
        items_report.rows_read,
        items_report.rows_kept,
        items_report.exact_duplicates_merged,
    ) == (3, 2, 1)


def test_negative_item_price_and_its_orphaned_purchases(tmp_path: Path) -> None:
    cfg = config(tmp_path, GOOD, items="sku,price,cat\nx,-1,a\ny,2,b\n")
    with pytest.raises(DataValidationError) as info:
        load_data(cfg)
    assert info.value.problems.select("table", "row", "column", "reason").sort("table").rows() == [
        ("interactions", 1, "sku", "item_id not in the items table"),
        ("items", 1, "price", "negative price"),
    ]


def test_missing_column_names_file_and_columns(tmp_path: Path) -> None:
    cfg = config(tmp_path, "cust,sku,when,qty,value\nA,x,2024-01-01,1,1\n")
    with pytest.raises(DataFileError, match=r"i\.csv: missing column\(s\) \['ts'\]; the file has"):
        load_data(cfg)


def test_unknown_canonical_name_is_refused(tmp_path: Path) -> None:
    cfg = config(tmp_path, GOOD)
    cfg.interactions.columns = {**COLUMNS, "custmer_id": "cust"}
    with pytest.raises(ValueError, match=r"data.interactions.columns: unknown canonical name"):
        load_data(cfg)


def test_missing_file_and_unknown_mode(tmp_path: Path) -> None:
    cfg = config(tmp_path, GOOD)
    cfg.interactions.path = str(tmp_path / "nope.csv")
    with pytest.raises(DataFileError, match=r"nope\.csv: no such file"):
        load_data(cfg)
    cfg = config(tmp_path, GOOD, on_bad_rows="skip")
    with pytest.raises(ValueError, match="on_bad_rows: 'skip' is not one of"):
        load_data(cfg)


def test_quarantine_writes_every_rejected_row_with_reasons(tmp_path: Path) -> None:
    rows = (
        GOOD + "C,x,bad-date,1,1\nD,x,2024-01-04,-2,abc\n,x,2024-01-05,1,1\nE,zz,2024-01-06,1,1\n"
    )
    cfg = config(tmp_path, rows, items="sku,price,cat\nx,1,a\ny,2,b\n", on_bad_rows="quarantine")
    data = load_data(cfg, rejects_dir=tmp_path / "rejects")
    assert data.interactions["customer_id"].to_list() == ["A", "B"]
    report = data.tables[0]
    assert report.rows_read == 6 and report.rows_kept == 2
    assert report.rejected == {
        "unparsable timestamp": 1,
        "negative quantity": 1,
        "non-numeric revenue": 1,
        "empty customer_id": 1,
        "item_id not in the items table": 1,
    }
    rejects = pl.read_csv(report.rejects_file, infer_schema=False)
    assert rejects["row"].to_list() == ["3", "4", "5", "6"]
    assert rejects.filter(pl.col("row") == "4")["reasons"].item() == (
        "negative quantity; non-numeric revenue"
    )
    # The raw values, under the file's own column names, so the user can find and fix them.
    assert rejects.filter(pl.col("row") == "3")["ts"].item() == "bad-date"
    assert rejects.filter(pl.col("row") == "4")["value"].item() == "abc"
    assert rejects.height + data.interactions.height == report.rows_read


def test_quarantine_needs_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs a directory"):
        load_data(config(tmp_path, GOOD, on_bad_rows="quarantine"))


def test_gzip_csv_parquet_and_timestamp_format(tmp_path: Path) -> None:
    text = "cust,sku,ts,qty,value\n007,x,1/2/2024,1,2\n"
    with gzip.open(tmp_path / "i.csv.gz", "wt") as f:
        f.write(text)
    cfg = DataConfig(
        name="t",
        interactions=TableConfig(
            path=str(tmp_path / "i.csv.gz"), columns=COLUMNS, timestamp_format="%m/%d/%Y"
        ),
    )
    data = load_data(cfg)
    assert data.interactions["customer_id"].item() == "007"  # ids stay strings
    assert str(data.interactions["timestamp"].item()) == "2024-01-02 00:00:00"
    pl.DataFrame(
        {"cust": [7], "sku": [1], "ts": ["2024-01-02"], "qty": [1], "value": [2.0]}
    ).with_columns(pl.col("ts").str.to_datetime()).write_parquet(tmp_path / "i.parquet")
    cfg.interactions = TableConfig(path=str(tmp_path / "i.parquet"), columns=COLUMNS)
    assert load_data(cfg).interactions.row(0)[:2] == ("7", "1")


def test_optional_columns_are_filled_and_said(tmp_path: Path) -> None:
    cfg = DataConfig(
        name="t",
        interactions=TableConfig(
            path=write(tmp_path / "i.csv", "c,i,t\nA,x,2024-01-01\nA,y,2024-01-01\n"),
            columns={"customer_id": "c", "item_id": "i", "timestamp": "t"},
        ),
    )
    data = load_data(cfg)
    assert data.interactions["quantity"].to_list() == [1.0, 1.0]
    assert data.interactions["basket_id"].n_unique() == 1  # one receipt: same customer, same time
    assert any("no revenue" in n for n in data.notes)


def test_derived_customers_keep_most_frequent_value(tmp_path: Path) -> None:
    text = "c,i,t,area\nA,x,2024-01-01,1\nA,y,2024-01-02,2\nA,y,2024-01-03,2\nB,x,2024-01-01,\n"
    cfg = DataConfig(
        name="t",
        interactions=TableConfig(
            path=write(tmp_path / "i.csv", text),
            columns={"customer_id": "c", "item_id": "i", "timestamp": "t"},
        ),
        derive_customers={"region": "area"},
    )
    data = load_data(cfg)
    assert data.customers.rows() == [("A", "2"), ("B", None)]
    assert "1 customers had several values" in data.notes[0]
    assert "area" not in data.interactions.columns


def test_customers_without_a_row_get_unknown_attributes(tmp_path: Path) -> None:
    data = load_data(config(tmp_path, GOOD, customers="cust,region\nA,north\nZ,west\n"))
    assert data.customers.rows() == [("A", "north"), ("B", None), ("Z", "west")]
    assert any("1 purchasing customers have no row" in n for n in data.notes)


def test_two_extractions_of_one_zip_at_once_both_succeed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two jobs reading one zipped CSV for the first time at once (two benchmarks side by
    side): the one that started first is held mid-copy until the other has finished, and
    both end with the whole file (a shared temporary name made the first one fail)."""
    import threading
    import zipfile

    from segrec.data import read

    text = "cust,sku\n" + "".join(f"c{i},s{i}\n" for i in range(1000))
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.csv", text)
    monkeypatch.setenv("SEGREC_CACHE", str(tmp_path / "cache"))
    first_started, second_done = threading.Event(), threading.Event()
    opened = zipfile.ZipFile.open

    def held_open(self: zipfile.ZipFile, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        member = opened(self, *args, **kwargs)  # type: ignore[arg-type]
        if threading.current_thread().name == "first":
            read_chunk = member.read

            def held_read(n: int = -1) -> bytes:
                first_started.set()
                second_done.wait(10)
                return read_chunk(n)

            member.read = held_read  # type: ignore[method-assign]
        return member

    monkeypatch.setattr(zipfile.ZipFile, "open", held_open)
    results: dict[str, object] = {}

    def extract() -> None:
        try:
            results[threading.current_thread().name] = read._extract_member(archive, None)
        except Exception as error:  # reported by the assertion below
            results[threading.current_thread().name] = error

    first = threading.Thread(target=extract, name="first")
    first.start()
    assert first_started.wait(10)
    extract()  # the second job, in this thread
    second_done.set()
    first.join(10)
    assert all(isinstance(r, Path) for r in results.values()), results
    target = results["MainThread"]
    assert isinstance(target, Path) and target.read_text() == text
    assert [p.name for p in target.parent.iterdir()] == ["a.csv"]
