"""Purchase sequences and training examples on a hand-made history: no leakage, exact
gathers, snapshots, deterministic batches."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import torch

from segrec.data import IdMap
from segrec.models import ModelConfig
from segrec.training.examples import EpochBatches, build_examples, customer_inputs, snapshot_dates
from segrec.training.features import PRICE_BAND, FeatureSpace
from segrec.training.sequences import PurchaseSequences, gather_distinct, gather_history

D = datetime


def history() -> pl.DataFrame:
    """c1: basket b1 (i1, i2, i1 again) on day 1, b2 (i3) on day 3, b3 (i2, i4) on day 6;
    c2: one basket (i4) on day 2; a line on an item outside the catalog (x)."""
    rows = [
        ("c1", "i1", D(2024, 1, 1), "b1"),
        ("c1", "i2", D(2024, 1, 1), "b1"),
        ("c1", "i1", D(2024, 1, 1, 0, 5), "b1"),
        ("c1", "i3", D(2024, 1, 3), "b2"),
        ("c1", "i4", D(2024, 1, 6), "b3"),
        ("c1", "i2", D(2024, 1, 6), "b3"),
        ("c2", "i4", D(2024, 1, 2), "b4"),
        ("c2", "x", D(2024, 1, 2), "b4"),
    ]
    frame = pl.DataFrame(
        rows, schema=["customer_id", "item_id", "timestamp", "basket_id"], orient="row"
    )
    return frame.with_columns(quantity=pl.lit(1.0), revenue=pl.lit(2.0))


ITEMS = pl.DataFrame(
    {
        "item_id": ["i1", "i2", "i3", "i4", "i5"],
        "category": ["a", "a", "b", "b", None],
        "price": [1.0, 2.0, 3.0, 4.0, None],
    }
)
CATALOG = IdMap.from_values(ITEMS["item_id"])
CFG = ModelConfig(history_len=3, price_bands=2)


def features(labels: pl.DataFrame | None = None) -> FeatureSpace:
    return FeatureSpace.fit(CFG, CATALOG, ITEMS, history(), labels)


def test_sequences_dedupe_baskets_and_drop_unknown_items() -> None:
    seq = PurchaseSequences.build(history(), CATALOG)
    assert len(seq) == 6  # i1 twice in b1 is one line; x is outside the catalog
    assert seq.customers.ids.to_list() == ["c1", "c2"]
    assert seq.ptr.tolist() == [0, 5, 6]
    assert seq.basket_ordinal.tolist() == [0, 0, 1, 2, 2, 0]
    assert seq.basket_start.tolist() == [0, 0, 2, 3, 3, 5]


def test_examples_see_only_earlier_baskets() -> None:
    seq = PurchaseSequences.build(history(), CATALOG)
    ex = build_examples(seq, features(), None)
    assert len(ex) == 4 and ex.n_lines == 6  # four baskets, six lines
    batch = ex.batch(torch.arange(4))
    i = {name: CATALOG.encode([name])[0] for name in ("i1", "i2", "i3", "i4")}
    # c1's third basket sees b2 then b1 (most recent first), never its own items.
    assert batch["history"][2].tolist() == [i["i3"], i["i2"], i["i1"]]
    assert batch["history"][0].tolist() == [0, 0, 0]  # first basket: nothing before
    assert batch["target"].tolist() == [i["i1"], i["i2"], i["i3"], i["i2"], i["i4"], i["i4"]]
    assert batch["target_row"].tolist() == [0, 0, 1, 2, 2, 3]
    # numeric: log lines, log baskets, log days since the previous basket, has history
    assert torch.allclose(
        batch["numeric"][2],
        torch.tensor([np.log1p(3), np.log1p(2), np.log1p(3.0), 1.0], dtype=torch.float32),
    )
    assert batch["numeric"][3].tolist() == [0.0, 0.0, 0.0, 0.0]


def test_repeat_lines_are_weighted_and_all_repeat_baskets_dropped() -> None:
    # c1 comes back on day 9 for i3 alone: a basket of nothing new.
    again = pl.DataFrame(
        [("c1", "i3", D(2024, 1, 9), "b5")],
        schema=["customer_id", "item_id", "timestamp", "basket_id"],
        orient="row",
    ).with_columns(quantity=pl.lit(1.0), revenue=pl.lit(2.0))
    seq = PurchaseSequences.build(pl.concat([history(), again]), CATALOG)
    # lines: c1 b1 (i1, i2), b2 (i3), b3 (i2, i4), b5 (i3); c2 (i4): i4 is new for c2
    assert seq.repeats().tolist() == [False, False, False, True, False, True, False]
    half = build_examples(seq, features(), None, repeat_weight=0.5)
    assert len(half) == 5
    assert half.batch(torch.arange(5))["weight"].tolist() == [1, 1, 1, 0.5, 1, 0.5, 1]
    none = build_examples(seq, features(), None, repeat_weight=0.0)
    assert len(none) == 4  # b5 is no example; b3 stays for i4, its i2 weighs nothing
    batch = none.batch(torch.arange(4))
    assert batch["weight"].tolist() == [1, 1, 1, 0, 1, 1]
    assert batch["target_row"].tolist() == [0, 0, 1, 2, 2, 3]


def test_gather_history_truncates_to_the_last_lines() -> None:
    items = torch.arange(10, 20)
    out = gather_history(items, torch.tensor([0, 4, 0]), torch.tensor([5, 5, 0]), 3)
    assert out.tolist() == [[14, 13, 12], [14, 0, 0], [0, 0, 0]]


def test_next_same_points_at_the_next_purchase_of_the_item() -> None:
    seq = PurchaseSequences.build(history(), CATALOG)
    # lines: c1 b1 (i1, i2), b2 (i3), b3 (i2, i4); c2 b4 (i4): only c1's i2 comes back.
    assert seq.next_same.tolist() == [6, 3, 6, 6, 6, 6]


def test_gather_distinct_keeps_each_item_at_its_latest_purchase() -> None:
    items = torch.tensor([5, 6, 5, 7, 6, 5, 9])
    next_same = torch.tensor([2, 4, 5, 7, 7, 7, 7])
    start, end = torch.tensor([0, 0, 0, 1, 0]), torch.tensor([7, 4, 0, 6, 7])
    out = gather_distinct(items, next_same, start, end, 3, scan=10)
    assert out.tolist() == [[9, 5, 6], [7, 5, 6], [0, 0, 0], [5, 6, 7], [9, 5, 6]]
    # The scan bounds the lines searched: a staple bought three times hides older items.
    items, next_same = torch.tensor([8, 5, 5, 5]), torch.tensor([4, 2, 3, 4])
    start, end = torch.tensor([0]), torch.tensor([4])
    assert gather_distinct(items, next_same, start, end, 2, scan=4).tolist() == [[5, 8]]
    assert gather_distinct(items, next_same, start, end, 2, scan=2).tolist() == [[5, 0]]


def test_distinct_history_in_examples_and_inputs() -> None:
    cfg = ModelConfig(history_len=4, price_bands=2, history_items="distinct", history_scan=8)
    feats = FeatureSpace.fit(cfg, CATALOG, ITEMS, history(), None)
    seq = PurchaseSequences.build(history(), CATALOG)
    i = {name: CATALOG.encode([name])[0] for name in ("i1", "i2", "i3", "i4")}
    # c1 as of day 8: b3 (i4, then i2: lines run in item order within a basket), b2 (i3),
    # b1 (i2 again, i1): the last four lines would end i2, the distinct items end i1.
    out = customer_inputs(feats, seq, pl.Series(["c1"]), D(2024, 1, 8), None)
    assert out["history"][0].tolist() == [i["i4"], i["i2"], i["i3"], i["i1"]]
    batch = build_examples(seq, feats, None).batch(torch.arange(4))
    assert batch["history"][2].tolist() == [i["i3"], i["i2"], i["i1"], 0]


def test_customer_inputs_as_of_and_cold_customers() -> None:
    labels = pl.DataFrame(
        {
            "customer_id": ["c1", "c2", "new"],
            "age": ["young", "old", "old"],
            "rfm": ["R1", "unknown", "never"],
        }
    )
    feats = features(labels)
    seq = PurchaseSequences.build(history(), CATALOG)
    out = customer_inputs(feats, seq, pl.Series(["c1", "new", "c2"]), D(2024, 1, 8), labels)
    assert out["customer"].tolist()[1] == 0  # never bought: unknown id
    assert out["history"][1].tolist() == [0, 0, 0]
    assert out["history"][0].tolist()[0] in CATALOG.encode(["i2", "i4"])
    seg = out["segments"]
    assert seg[1, 0] == feats.segments["age"].encode(["old"])[0]  # cold: labels still known
    assert seg[2, 1] == 0  # "unknown" label → slot 0
    assert out["numeric"][0, 2] == torch.log1p(torch.tensor(2.0))  # 2 days since day 6


def test_unseen_labels_encode_to_unknown() -> None:
    feats = features(pl.DataFrame({"customer_id": ["c1"], "age": ["young"]}))
    later = pl.DataFrame({"customer_id": ["c1", "c2"], "age": ["brand_new_label", "young"]})
    codes = feats.encode_segments(later, pl.Series(["c1", "c2", "c3"]))
    assert codes[:, 0].tolist() == [0, 1, 0]


def test_item_attributes_and_price_bands() -> None:
    feats = features()
    assert feats.attributes == ["category", PRICE_BAND]
    table = feats.item_attributes
    assert table.shape == (6, 2) and table[0].tolist() == [0, 0]
    i5 = CATALOG.encode(["i5"])[0]
    assert table[i5].tolist() == [0, 0]  # no category, no price: unknown slots
    assert feats.sizes().attribute_sizes == [3, 3]


def test_snapshots_give_each_basket_the_labels_before_it() -> None:
    seq = PurchaseSequences.build(history(), CATALOG)
    dates = snapshot_dates(D(2024, 1, 1, 9), D(2024, 1, 7), 3)
    assert dates == [D(2024, 1, 2), D(2024, 1, 5)]
    snaps = [
        (d, pl.DataFrame({"customer_id": ["c1", "c2"], "rfm": [f"s{k}", f"s{k}"]}))
        for k, d in enumerate(dates)
    ]
    labels = pl.concat([f for _, f in snaps])
    ex = build_examples(seq, features(labels), None, snaps)
    vocab = features(labels).segments["rfm"]
    got = ex.batch(torch.arange(4))["segments"][:, 0].tolist()
    # b1 (day 1): before any snapshot; b2 (day 3): s0; b3 (day 6): s1; c2's b4 (day 2): s0
    assert got == [0, *vocab.encode(["s0", "s1", "s0"]).tolist()]


def test_customer_inputs_from_a_history_of_no_lines() -> None:
    """Every customer is cold: empty ranges, no counts, and no index past the pointers."""
    feats = features()
    seq = PurchaseSequences.build(history().clear(), CATALOG)
    out = customer_inputs(feats, seq, pl.Series(["c1", "new"]), D(2024, 1, 8), None)
    assert out["history"].tolist() == [[0, 0, 0], [0, 0, 0]]
    assert torch.all(out["numeric"] == 0)


def test_epoch_batches_are_a_function_of_seed_and_epoch() -> None:
    sampler = EpochBatches(10, 4, seed=3)
    sampler.set_epoch(2)
    first = [b.tolist() for b in sampler]
    assert sorted(i for b in first for i in b) == list(range(10))
    assert len(first) == len(sampler) == 3
    sampler.set_epoch(0)
    other = [b.tolist() for b in sampler]
    sampler.set_epoch(2)
    assert [b.tolist() for b in sampler] == first != other


def test_no_batch_holds_a_single_basket() -> None:
    # The numeric features' BatchNorm cannot train on one row: it joins the batch before.
    sampler = EpochBatches(9, 4, seed=1)
    batches = [b.tolist() for b in sampler]
    assert [len(b) for b in batches] == [4, 5] and len(sampler) == 2
    assert sorted(i for b in batches for i in b) == list(range(9))
    assert [len(b) for b in EpochBatches(1, 4, seed=1)] == [1]  # nothing to join


def test_no_snapshot_date_means_the_cutoff_labels() -> None:
    # A snapshot dated at the cutoff would postdate every basket (all labels unknown).
    assert snapshot_dates(D(2024, 1, 1, 9), D(2024, 1, 7), None) == []
    assert snapshot_dates(D(2024, 1, 6, 9), D(2024, 1, 6, 18), 3) == []
