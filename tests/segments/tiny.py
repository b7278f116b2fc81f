"""A hand-made retail data set small enough to work out every label by hand.

as_of is 2024-03-01 00:00. Purchases are at noon, so recency is a whole number + 0.5 days.

customer  attributes            purchases before as_of (item: category, revenue, basket)
c1        age 22, north         02-10 i2 A 10 b3; 02-20 i1 A 10 b2; 02-28 i1 A 10 + i3 B 5 b1
c2        age 30, south         01-15 i3 B 100 b4
c3        age None, 'Unknown'   02-25 i4 C 30 b5; 02-26 i4 C 30 b6
c4        age 65, None          none (buys i1 on 03-05, after as_of)
c5        age 41, north         02-29 i3 B revenue unknown b7
c6        age 25, east          never
c7        (not in customers)    02-01 i2 A 20 b8
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from segrec.data import RetailData

AS_OF = datetime(2024, 3, 1)

_ROWS = [  # customer, item, day, revenue, basket
    ("c1", "i2", "2024-02-10", 10.0, "b3"),
    ("c1", "i1", "2024-02-20", 10.0, "b2"),
    ("c1", "i1", "2024-02-28", 10.0, "b1"),
    ("c1", "i3", "2024-02-28", 5.0, "b1"),
    ("c2", "i3", "2024-01-15", 100.0, "b4"),
    ("c3", "i4", "2024-02-25", 30.0, "b5"),
    ("c3", "i4", "2024-02-26", 30.0, "b6"),
    ("c4", "i1", "2024-03-05", 10.0, "b9"),
    ("c5", "i3", "2024-02-29", None, "b7"),
    ("c7", "i2", "2024-02-01", 20.0, "b8"),
]


def tiny_data() -> RetailData:
    """The table above as a ``RetailData`` with canonical types."""
    customer, item, day, revenue, basket = zip(*_ROWS, strict=True)
    interactions = pl.DataFrame(
        {
            "customer_id": customer,
            "item_id": item,
            "timestamp": [datetime.fromisoformat(d).replace(hour=12) for d in day],
            "quantity": [1.0] * len(_ROWS),
            "revenue": pl.Series(revenue, dtype=pl.Float64),
            "basket_id": basket,
        }
    ).with_columns(pl.col("timestamp").cast(pl.Datetime("us")))
    customers = pl.DataFrame(
        {
            "customer_id": ["c1", "c2", "c3", "c4", "c5", "c6"],
            "age": [22, 30, None, 65, 41, 25],
            "region": ["north", "south", "Unknown", None, "north", "east"],
        }
    )
    items = pl.DataFrame(
        {
            "item_id": ["i1", "i2", "i3", "i4"],
            "category": ["A", "A", "B", "C"],
            "price": [10.0, 10.0, 5.0, 30.0],
        }
    )
    return RetailData(interactions, customers, items, [], [])


def labels(frame: pl.DataFrame, family: str) -> dict[str, str]:
    """customer_id -> label of one family."""
    return dict(frame.select("customer_id", family).iter_rows())
