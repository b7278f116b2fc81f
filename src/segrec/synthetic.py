"""Seeded synthetic retail data whose structure is planted, so every stage has a known answer.

Real purchase data is large, private and carries no ground truth. This module writes the same
three tables a user would provide (interactions, customers, items, all Parquet, string ids) plus
``planted.parquet``, the structure that generated them, which no model may read:

- hidden taste clusters, drawn partly from age band, income band and region (so attribute
  segments carry signal without giving the answer away), each with its own sharpened category
  preference, so segments really differ in what they buy;
- per-customer staples from the cluster's favourite categories, bought again and again, so
  repeat buying dominates as it does in grocery;
- ``growing_clusters`` clusters (ids ``0 .. growing_clusters - 1``) whose customers join
  increasingly over time, so segment growth is measurable;
- cold customers whose first purchase falls on or after ``new_customers_from``.

Everything is vectorised numpy and written customer chunk by chunk, so one million customers
stay memory-bounded. Chunk ``i`` draws from ``SeedSequence(seed, spawn_key=(1, i))``: the same
config (chunk size included) always gives the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from rich.progress import Progress

AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
REGIONS = ("north", "south", "east", "west", "central", "coast")
INCOME_BANDS = ("low", "mid", "high", "very_high")
GENERATOR_VERSION = 1  # bump when the output for a given config changes: caches then regenerate

_AGE_EDGES = np.array([18, 25, 35, 45, 55, 65])
_REGION_P = np.array([0.24, 0.20, 0.18, 0.15, 0.13, 0.10])
_INCOME_CUTS = np.array([-0.3, 0.8, 1.6])  # on a latent score that peaks in middle age
_OPEN_US, _SHOP_US = 8 * 3_600_000_000, 13 * 3_600_000_000  # shops open 08:00-21:00
_US_PER_DAY = 86_400_000_000
_CONFIG_FILE = "synthetic_config.json"

_STR, _INT = pa.string(), pa.int64()
_SCHEMAS = {  # fixed, so every chunk writes the same types and readers see no surprises
    "interactions": pa.schema(
        {
            "customer_id": _STR,
            "item_id": _STR,
            "timestamp": pa.timestamp("us"),
            "quantity": _INT,
            "revenue": pa.float64(),
            "basket_id": _STR,
        }
    ),
    "customers": pa.schema(
        {"customer_id": _STR, "age": _INT, "age_band": _STR, "region": _STR, "income_band": _STR}
    ),
    "planted": pa.schema(
        {
            "customer_id": _STR,
            "taste_cluster": _INT,
            "is_new": pa.bool_(),
            "staples": pa.list_(_STR),
        }
    ),
}


@dataclass
class SyntheticConfig:
    """What to generate. Defaults give ~400k rows in under a second: enough for every stage.

    A million customers with ``n_days=91, baskets_per_week=0.6`` give ~32M rows in ~25 s.
    """

    seed: int = 7
    n_customers: int = 4000
    n_items: int = 1500
    n_categories: int = 20
    n_brands: int = 60
    n_clusters: int = 6  # hidden taste clusters
    start_date: str = "2024-01-01"
    n_days: int = 182
    new_customers_from: str = "2024-06-03"  # cold customers first appear on/after this date
    new_customer_share: float = 0.08  # share of customers whose first purchase is that late
    baskets_per_week: float = 1.0  # mean; per-customer rate is lognormal around it
    items_per_basket: float = 5.0  # mean basket lines (1 + Poisson)
    staples_per_customer: int = 6
    staple_share: float = 0.45  # share of basket lines that are the customer's staples
    growing_clusters: int = 2  # clusters 0..g-1: their customer base grows over time
    chunk_customers: int = 200_000  # generate and write in customer chunks: memory bounded
    missing_share: float = 0.03  # share of customers with null region (and, apart, income)
    item_zipf: float = 1.0  # exponent of item popularity by rank inside its category
    growth_boost: float = 1.0  # logit added to growing clusters for new customers
    attribute_strength: float = 1.0  # scale of attribute effects on the cluster logits

    def __post_init__(self) -> None:
        counts = ("n_customers", "n_items", "n_categories", "n_brands", "n_clusters", "n_days")
        for name in (*counts, "chunk_customers"):  # fail at config time, not mid-generation
            if getattr(self, name) < 1:
                raise ValueError(f"SyntheticConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.n_items < self.n_categories:
            raise ValueError("SyntheticConfig.n_items must be >= n_categories (none left empty)")
        for name in ("new_customer_share", "staple_share", "missing_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"SyntheticConfig.{name} must be in [0, 1]")
        if not 0 <= self.growing_clusters <= self.n_clusters:
            raise ValueError("SyntheticConfig.growing_clusters must be in [0, n_clusters]")
        if self.staples_per_customer < 0:
            raise ValueError("SyntheticConfig.staples_per_customer must be >= 0")
        if self.baskets_per_week <= 0 or self.items_per_basket < 1:
            raise ValueError("SyntheticConfig needs baskets_per_week > 0, items_per_basket >= 1")
        if not 0 < self.new_customer_day() < self.n_days:
            raise ValueError("SyntheticConfig.new_customers_from must fall inside the window")

    def new_customer_day(self) -> int:
        """Day index of ``new_customers_from`` relative to ``start_date``."""
        delta = np.datetime64(self.new_customers_from, "D") - np.datetime64(self.start_date, "D")
        return int(delta.astype(np.int64))


@dataclass(frozen=True)
class SyntheticPaths:
    """Where the generated tables lie; ``planted`` is ground truth, never a model input."""

    interactions: Path
    customers: Path
    items: Path
    planted: Path


@dataclass(frozen=True)
class _World:
    """Everything shared by all customers: catalog, cluster tastes, attribute effects.

    Sampling tables are cumulative weights of consecutive segments where segment ``g`` spans
    ``(g, g + 1]``, so one ``searchsorted`` samples each row from its own segment.
    """

    item_category: np.ndarray  # (n_items,)
    item_brand: np.ndarray  # (n_items,)
    item_price: np.ndarray  # (n_items,)
    items_by_category: np.ndarray  # (n_items,) item indices grouped by category
    item_cum: np.ndarray  # (n_items,) in-category popularity, aligned with items_by_category
    staple_item_cum: np.ndarray  # flatter: staples are personal, not everyone's bestsellers
    category_counts: np.ndarray  # (n_categories,)
    cluster_cum: np.ndarray  # (n_clusters * n_categories,) category preference per cluster
    base_logit: np.ndarray  # (n_clusters,)
    age_effect: np.ndarray  # (n_age_bands, n_clusters)
    income_effect: np.ndarray  # (n_income_bands, n_clusters)
    region_effect: np.ndarray  # (n_regions, n_clusters)


def _segment_cum(weights: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Normalised cumulative weights per consecutive segment, offset by the segment index."""
    group = np.repeat(np.arange(len(counts)), counts)
    ends = np.cumsum(counts)
    cs = np.cumsum(weights)
    before = np.concatenate([[0.0], cs])[ends - counts]
    within = (cs - before[group]) / (cs[ends - 1] - before)[group]
    within[ends - 1] = 1.0  # exact upper bound: rounding never spills into the next segment
    return group + within


def _sample(cum: np.ndarray, counts: np.ndarray, group: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Flat positions drawn from segment ``group[j]`` of ``cum`` with uniforms ``u``: (n,)."""
    ends = np.cumsum(counts)
    pos = np.searchsorted(cum, group + u, side="right")
    return np.clip(pos, (ends - counts)[group], ends[group] - 1)


def _make_world(cfg: SyntheticConfig) -> _World:
    """Draw the catalog and the cluster tastes from their own stream, independent of chunking."""
    rng = np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(0,)))
    n, c, k = cfg.n_items, cfg.n_categories, cfg.n_clusters
    sizes = rng.dirichlet(np.full(c, 2.0))
    category = rng.permutation(np.concatenate([np.arange(c), rng.choice(c, n - c, p=sizes)]))
    order = np.lexsort((rng.random(n), category))  # random rank inside each category
    counts = np.bincount(category, minlength=c)
    rank = np.arange(n) - (np.cumsum(counts) - counts)[category[order]]
    per_cat = -(-cfg.n_brands // c)  # brands mostly belong to one category, a few span many
    brand = (category + c * rng.integers(0, per_cat, n)) % cfg.n_brands
    brand = np.where(rng.random(n) < 0.1, rng.integers(0, cfg.n_brands, n), brand)
    cat_price = np.exp(rng.normal(np.log(3.0), 0.7, c))
    price = np.maximum(np.round(cat_price[category] * np.exp(rng.normal(0, 0.35, n)), 2), 0.1)
    pref = rng.dirichlet(np.ones(c), size=k) ** 2  # sharpened: each cluster has favourites
    pref = 0.85 * pref / pref.sum(1, keepdims=True) + 0.15 * sizes  # plus a shared baseline
    s = cfg.attribute_strength
    return _World(
        item_category=category,
        item_brand=brand,
        item_price=price,
        items_by_category=order,
        item_cum=_segment_cum((rank + 1.0) ** -cfg.item_zipf, counts),
        staple_item_cum=_segment_cum((rank + 1.0) ** (-0.5 * cfg.item_zipf), counts),
        category_counts=counts,
        cluster_cum=_segment_cum(pref.ravel(), np.full(k, c)),
        base_logit=rng.normal(0, 0.3, k),
        age_effect=rng.normal(0, s, (len(AGE_BANDS), k)),
        income_effect=rng.normal(0, 0.8 * s, (len(INCOME_BANDS), k)),
        region_effect=rng.normal(0, 0.3 * s, (len(REGIONS), k)),
    )


def _draw_items(world: _World, cluster: np.ndarray, u: np.ndarray, staple: bool) -> np.ndarray:
    """Item index per row: a category from the row's cluster's taste, then by rank inside it."""
    c = len(world.category_counts)
    item_cum = world.staple_item_cum if staple else world.item_cum
    clusters = np.full(len(world.cluster_cum) // c, c)
    category = _sample(world.cluster_cum, clusters, cluster, u[0]) - cluster * c
    pos = _sample(item_cum, world.category_counts, category, u[1])
    return world.items_by_category[pos]


def _draw_staples(
    cfg: SyntheticConfig, world: _World, rng: np.random.Generator, cluster: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``staples_per_customer`` distinct staples each: (flat item indices, counts per row).

    Three times as many candidates are drawn and the first distinct ones kept, in draw order.
    """
    n, s = len(cluster), cfg.staples_per_customer
    if s == 0:
        return np.zeros(0, np.int64), np.zeros(n, np.int64)
    m = 3 * s
    cand = _draw_items(world, np.repeat(cluster, m), rng.random((2, n * m)), staple=True)
    cand = cand.reshape(n, m)
    order = np.argsort(cand, axis=1, kind="stable")  # equal items: first drawn sorts first
    ordered = np.take_along_axis(cand, order, axis=1)
    dup_sorted = np.concatenate([np.zeros((n, 1), bool), ordered[:, 1:] == ordered[:, :-1]], 1)
    dup = np.empty_like(dup_sorted)
    np.put_along_axis(dup, order, dup_sorted, axis=1)
    keep = ~dup & (np.cumsum(~dup, axis=1) <= s)
    return cand[keep], keep.sum(1)


def _draw_customers(
    cfg: SyntheticConfig, world: _World, rng: np.random.Generator, n: int
) -> dict[str, np.ndarray]:
    """Attributes, hidden cluster, cold-start flag and purchase rate of ``n`` customers."""
    age = np.clip(np.rint(rng.normal(46, 16, n)), 18, 85).astype(np.int64)
    band = np.searchsorted(_AGE_EDGES, age, side="right") - 1
    region = rng.choice(len(REGIONS), n, p=_REGION_P)
    income = np.searchsorted(_INCOME_CUTS, rng.normal(0, 1, n) + 0.8 * (1 - ((age - 50) / 25) ** 2))
    is_new = rng.random(n) < cfg.new_customer_share
    logits = world.base_logit + world.age_effect[band] + world.income_effect[income]
    logits += world.region_effect[region]
    logits[:, : cfg.growing_clusters] += cfg.growth_boost * is_new[:, None]
    cluster = np.argmax(logits + rng.gumbel(size=logits.shape), axis=1)  # Gumbel-max = softmax
    rate = cfg.baskets_per_week * np.exp(rng.normal(0, 0.6, n) - 0.18)  # lognormal, mean kept
    missing = rng.random((2, n)) < cfg.missing_share  # attributes real data lacks, apart
    attrs = {"age": age, "band": band, "region": region, "income": income}
    flags = {"region_missing": missing[0], "income_missing": missing[1], "is_new": is_new}
    return {**attrs, **flags, "cluster": cluster, "rate": rate}


def _draw_baskets(
    cfg: SyntheticConfig, rng: np.random.Generator, cust: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Baskets as (customer row, timestamp in µs since epoch), ordered by customer then time.

    Each customer gets at least one basket. Established customers' first basket falls before
    the cold-start date (so ``is_new`` is exactly the planted flag); members of growing
    clusters join on a day whose density rises linearly, new customers on or after that date.
    """
    new_day, n_days = cfg.new_customer_day(), cfg.n_days
    u = rng.random(len(cust["rate"]))
    growing = cust["cluster"] < cfg.growing_clusters
    start = np.where(
        cust["is_new"],
        new_day + (u * (n_days - new_day)).astype(np.int64),
        np.where(growing, (new_day * np.sqrt(u)).astype(np.int64), 0),
    )
    n_baskets = np.maximum(1, rng.poisson(cust["rate"] * (n_days - start) / 7))
    owner = np.repeat(np.arange(len(start)), n_baskets)
    first = np.cumsum(n_baskets) - n_baskets
    hi = np.full(len(owner), n_days)
    hi[first] = np.where(cust["is_new"], start + 1, new_day)
    day = start[owner] + (rng.random(len(owner)) * (hi - start[owner])).astype(np.int64)
    origin = np.datetime64(cfg.start_date, "us").astype(np.int64)
    ts = origin + day * _US_PER_DAY + _OPEN_US + rng.integers(0, _SHOP_US, len(owner))
    order = np.lexsort((ts, owner))
    return owner[order], ts[order]


def _format_ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """``prefix`` + zero-padded numbers as a string array, vectorised through polars."""
    padded = pl.Series(numbers).cast(pl.String).str.zfill(width)
    return (prefix + padded).to_arrow().cast(pa.string())


def _id_width(cfg: SyntheticConfig) -> tuple[int, int]:
    """Widths of customer and item numbers: the documented 7 and 6 unless more are needed."""
    return max(7, len(str(cfg.n_customers))), max(6, len(str(cfg.n_items)))


def _chunk_tables(
    cfg: SyntheticConfig, world: _World, item_ids: pa.Array, index: int, basket_offset: int
) -> tuple[dict[str, pa.Table], int]:
    """Interactions, customers and planted rows of chunk ``index``, and its basket count."""
    rng = np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(1, index)))
    lo = index * cfg.chunk_customers
    n = min(cfg.chunk_customers, cfg.n_customers - lo)
    cust = _draw_customers(cfg, world, rng, n)
    staples, n_staples = _draw_staples(cfg, world, rng, cust["cluster"])
    owner, ts = _draw_baskets(cfg, rng, cust)
    n_lines = 1 + rng.poisson(cfg.items_per_basket - 1, len(owner))
    basket = np.repeat(np.arange(len(owner)), n_lines)
    row = owner[basket]
    cluster = cust["cluster"][row]
    item = _draw_items(world, cluster, rng.random((2, len(row))), staple=False)
    is_staple = (rng.random(len(row)) < cfg.staple_share) & (n_staples[row] > 0)
    if staples.size:
        k = (rng.random(len(row)) * n_staples[row]).astype(np.int64)  # uniform among own staples
        own = staples[np.minimum((np.cumsum(n_staples) - n_staples)[row] + k, staples.size - 1)]
        item = np.where(is_staple, own, item)
    quantity = 1 + rng.poisson(np.where(is_staple, 0.6, 0.25))
    noise = np.exp(rng.normal(0, 0.05, len(row)))  # promotions and rounding at the till
    revenue = np.maximum(np.round(quantity * world.item_price[item] * noise, 2), 0.01)
    cid_width, _ = _id_width(cfg)
    customer_ids = _format_ids("C", np.arange(lo, lo + n) + 1, cid_width)
    basket_ids = _format_ids("B", basket_offset + np.arange(len(owner)) + 1, 9)
    interactions = {
        "customer_id": customer_ids.take(pa.array(row)),
        "item_id": item_ids.take(pa.array(item)),
        "timestamp": pa.array(ts[basket].view("datetime64[us]")),
        "quantity": pa.array(quantity.astype(np.int64)),
        "revenue": pa.array(revenue),
        "basket_id": basket_ids.take(pa.array(basket)),
    }
    customers = {
        "customer_id": customer_ids,
        "age": pa.array(cust["age"]),
        "age_band": pa.array(AGE_BANDS).take(pa.array(cust["band"])),
        "region": pa.array(REGIONS).take(pa.array(cust["region"], mask=cust["region_missing"])),
        "income_band": pa.array(INCOME_BANDS).take(
            pa.array(cust["income"], mask=cust["income_missing"])
        ),
    }
    offsets = pa.array(np.concatenate([[0], np.cumsum(n_staples)]).astype(np.int32))
    planted = {
        "customer_id": customer_ids,
        "taste_cluster": pa.array(cust["cluster"].astype(np.int64)),
        "is_new": pa.array(cust["is_new"]),
        "staples": pa.ListArray.from_arrays(offsets, item_ids.take(pa.array(staples))),
    }
    columns = {"interactions": interactions, "customers": customers, "planted": planted}
    tables = {k: pa.Table.from_pydict(v, schema=_SCHEMAS[k]) for k, v in columns.items()}
    return tables, len(owner)


def _items_table(cfg: SyntheticConfig, world: _World, item_ids: pa.Array) -> pa.Table:
    """The catalog: category and brand labels, list price."""
    cat_width = max(2, len(str(cfg.n_categories - 1)))
    brand_width = max(2, len(str(cfg.n_brands - 1)))
    return pa.table(
        {
            "item_id": item_ids,
            "category": _format_ids("cat_", world.item_category, cat_width),
            "brand": _format_ids("brand_", world.item_brand, brand_width),
            "price": pa.array(world.item_price.astype(np.float64)),
        }
    )


def _paths(out_dir: Path) -> SyntheticPaths:
    return SyntheticPaths(
        interactions=out_dir / "interactions.parquet",
        customers=out_dir / "customers.parquet",
        items=out_dir / "items.parquet",
        planted=out_dir / "planted.parquet",
    )


def _config_record(cfg: SyntheticConfig) -> dict[str, object]:
    return {"generator_version": GENERATOR_VERSION, **asdict(cfg)}


def generate(cfg: SyntheticConfig, out_dir: Path, *, progress: bool = True) -> SyntheticPaths:
    """Write the four tables to ``out_dir``, chunk by chunk, and record the config beside them.

    Files are written under temporary names and renamed at the end, and the config record is
    written last, so an interrupted run never passes for a finished one.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / _CONFIG_FILE).unlink(missing_ok=True)
    paths = _paths(out_dir)
    world = _make_world(cfg)
    item_ids = _format_ids("I", np.arange(cfg.n_items) + 1, _id_width(cfg)[1])
    tmp = {name: getattr(paths, name).with_suffix(".parquet.tmp") for name in _SCHEMAS}
    pq.write_table(_items_table(cfg, world, item_ids), paths.items, compression="zstd")
    writers = {k: pq.ParquetWriter(p, _SCHEMAS[k], compression="zstd") for k, p in tmp.items()}
    n_chunks = -(-cfg.n_customers // cfg.chunk_customers)
    try:
        with Progress(disable=not progress) as bar:
            task = bar.add_task("synthetic data (customer chunks)", total=n_chunks)
            baskets = 0
            for index in range(n_chunks):
                tables, n_baskets = _chunk_tables(cfg, world, item_ids, index, baskets)
                baskets += n_baskets
                for name, table in tables.items():
                    writers[name].write_table(table)
                bar.advance(task)
    finally:
        for writer in writers.values():
            writer.close()
    for name, path in tmp.items():
        path.replace(getattr(paths, name))
    (out_dir / _CONFIG_FILE).write_text(json.dumps(_config_record(cfg), indent=2))
    return paths


def ensure_generated(
    cfg: SyntheticConfig, out_dir: Path, *, progress: bool = True
) -> SyntheticPaths:
    """Reuse ``out_dir`` if it holds tables made from this very config; else (re)generate.

    The comparison includes ``GENERATOR_VERSION``, so a change to this module invalidates caches.
    """
    out_dir = Path(out_dir)
    paths = _paths(out_dir)
    record = out_dir / _CONFIG_FILE
    files_exist = all(getattr(paths, name).exists() for name in (*_SCHEMAS, "items"))
    if files_exist and record.exists():
        try:
            if json.loads(record.read_text()) == _config_record(cfg):
                return paths
        except json.JSONDecodeError:
            pass  # a damaged record is treated like a missing one
    return generate(cfg, out_dir, progress=progress)
