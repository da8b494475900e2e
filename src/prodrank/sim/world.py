"""A deterministic simulated store: the project's embedded default data set.

The world is built in stages, each a small vectorised function with its own random
stream (so that turning one drift knob does not reshuffle everything else):

1. :func:`build_catalog`  products of ~100 types in 13 departments: brand, product line,
   attributes, terse listing-style titles and fuller descriptions, price, rating,
   long-tailed popularity.
2. :func:`build_queries`  shopper intents (type + optional attributes / brand / price
   band) rendered with the vocabulary-gap mechanisms (synonym, abbreviation, misspelling,
   descriptive phrasing) and a Zipf traffic curve (head / torso / tail).
3. drift (:func:`apply_catalog_drift`): new products and price changes.
4. :func:`build_pools`  the candidate pool the logged production ranker chooses from,
   with the true graded relevance (:func:`grade_pairs`) of every candidate.
5. :func:`plan_sessions` + :func:`simulate_sessions`  search sessions: a noisy ranker
   orders the pool, a position-biased shopper examines, clicks, adds to cart, buys.
   :func:`iter_impressions` yields the same events as per-impression DataFrames, for a
   traffic simulator that replays sessions.
6. :func:`generate_world` aggregates the events into the canonical tables of
   :mod:`prodrank.data.schema`, counting each (query, product) pair per shown position too.

Everything is seeded from ``seed`` and the :class:`~prodrank.config.WorldConfig`; the
same inputs give identical tables.
"""
from __future__ import annotations

import logging
import re
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from prodrank.config import WorldConfig
from prodrank.data.frequency import frequency_buckets
from prodrank.data.schema import (
    CATALOG,
    CATALOG_COLUMNS,
    COUNT_COLUMNS,
    GAP_TAGS,
    INTERACTIONS,
    POSITIONS,
    QUERIES,
    QUERY_COLUMNS,
    RELEVANCE,
)
from prodrank.sim import vocabulary as V

logger = logging.getLogger(__name__)

START = np.datetime64("2026-01-01T00:00:00", "ns")  # first day of the simulated log (UTC)
DAY_NS = 86_400 * 10**9
# Share of sessions per hour of the day: quiet nights, an evening peak.
HOURLY = np.array([0.6, 0.4, 0.3, 0.25, 0.25, 0.3, 0.5, 0.8, 1.0, 1.1, 1.2, 1.3, 1.4, 1.3, 1.25,
                   1.2, 1.25, 1.4, 1.6, 1.8, 1.9, 1.8, 1.4, 1.0])
SESSION_CHUNK = 16_384  # sessions simulated per batch; fixed so results never depend on it

BRANDS_PER_DEPARTMENT = 12
BRANDS_PER_TYPE = 6
LINES_PER_BRAND = 4
NEW_LINES_PER_BRAND = 2
TERSE_BRAND_SHARE = 0.35  # brands whose titles abbreviate colours and materials ("Blk")
SYNONYM_IN_DESCRIPTION = 0.2  # descriptions that also name the product by a synonym
NEW_PRODUCT_POPULARITY = 0.3  # new items start with little popularity (cold start)

QUERY_ZIPF = 1.0  # traffic of the query at rank r ~ r ** -QUERY_ZIPF
CONSTRAINT_COUNT_P = (0.3, 0.37, 0.23, 0.1)  # P(0, 1, 2, 3 constraints) of an intent
NICE_PRICES = np.array([10, 15, 20, 25, 30, 40, 50, 60, 75, 100, 125, 150, 200, 250, 300, 400,
                        500, 600, 750, 1000, 1250, 1500, 2000, 2500, 3000, 4000, 5000], float)

TYPE_SHARE, SIBLING_SHARE = 0.6, 0.25  # candidate pool mix; the rest is random products
OVERSAMPLE = (3, 2, 2)  # draws per pool slot from the type / sibling / random source

RANKER_POPULARITY = 0.5  # production ranker: relevance + this * z(log popularity) + noise
RANKER_STATIC_NOISE = 0.8  # systematic per-(query, product) error, times production_noise
RANKER_SESSION_NOISE = 0.6  # per-session error, times production_noise: positions vary
ATTRACT = np.array([0.05, 0.2, 0.6, 1.0])  # P(click | examined) / click_base, by grade
APPEAL_SIGMA = 0.25  # per-(query, product) click appeal noise (lognormal, mean 1)
ATC_BY_GRADE = np.array([0.25, 0.5, 0.85, 1.1])  # P(add to cart | click) / add_to_cart_rate
BUY_BY_GRADE = np.array([0.4, 0.7, 0.9, 1.05])  # P(purchase | add to cart) / purchase_rate

SYN, DESC, CANON = 0, 1, 2  # how a query names the product type


def _rng(seed: int, stream: str, *extra: int) -> np.random.Generator:
    """An independent generator per named stream, so stages do not share random draws."""
    return np.random.default_rng([int(seed) % 2**63, zlib.crc32(stream.encode()), *extra])


def _groups(keys: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices sorted by ``keys`` and the bounds of each key's run (CSR layout)."""
    order = np.argsort(keys, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(keys, minlength=n))])
    return order, bounds


# --------------------------------------------------------------------------- type table


@dataclass(frozen=True)
class TypeTable:
    """The vocabulary's product types as arrays (index = position in ``vocabulary.TYPES``)."""

    department: np.ndarray  # (T,) index into vocabulary.DEPARTMENTS
    price: np.ndarray
    popularity: np.ndarray
    n_slots: np.ndarray
    related: np.ndarray  # (T, T) bool: grade-1 "related type" of a query type
    rel_start: np.ndarray  # CSR of related types (without the type itself)
    rel_types: np.ndarray
    has_abbr: np.ndarray
    # per type, per slot, per value:
    title: list[list[np.ndarray]]
    terse: list[list[np.ndarray]]
    desc: list[list[np.ndarray]]
    attr: list[list[np.ndarray]]  # "color: black"
    mult: list[list[np.ndarray]]  # price multiplier
    value_p: list[list[np.ndarray]]  # how common each value is

    @property
    def n(self) -> int:
        return len(self.price)


@lru_cache(maxsize=1)
def type_table() -> TypeTable:
    types = V.TYPES
    dept = np.array([V.DEPARTMENTS.index(t.department) for t in types])
    subs = list(dict.fromkeys((t.department, t.subcategory) for t in types))
    sub = np.array([subs.index((t.department, t.subcategory)) for t in types])
    same_dept = dept[:, None] == dept[None, :]
    same_sub = sub[:, None] == sub[None, :]
    alone = same_sub.sum(1) == 1  # a type alone in its subcategory relates to its department
    related = same_dept & (same_sub | alone[:, None]) & ~np.eye(len(types), dtype=bool)
    rel_start = np.concatenate([[0], np.cumsum(related.sum(1))])
    tables: dict[str, list[list[np.ndarray]]] = {k: [] for k in ("title", "terse", "desc", "attr", "mult", "p")}
    for t in types:
        rows: dict[str, list[np.ndarray]] = {k: [] for k in tables}
        for kind, values in t.attributes:
            label = V.KINDS[kind].label
            rows["title"].append(np.array([v.title for v in values], object))
            rows["terse"].append(np.array([v.terse for v in values], object))
            rows["desc"].append(np.array([v.desc for v in values], object))
            rows["attr"].append(np.array([f"{label}: {v.name}" for v in values], object))
            if kind in V.UNIT_KINDS:
                num = np.array([v.number for v in values])
                rows["mult"].append((num / np.median(num)) ** V.UNIT_KINDS[kind].elasticity)
            else:
                rows["mult"].append(np.array([v.premium for v in values]))
            w = 1.0 / np.arange(1, len(values) + 1) ** 0.6  # first listed value is the most common
            rows["p"].append(w / w.sum())
        for k in tables:
            tables[k].append(rows[k])
    return TypeTable(
        department=dept,
        price=np.array([t.price for t in types]),
        popularity=np.array([t.popularity for t in types]),
        n_slots=np.array([len(t.attributes) for t in types]),
        related=related,
        rel_start=rel_start,
        rel_types=np.nonzero(related)[1],
        has_abbr=np.array([bool(t.abbreviations) for t in types]),
        title=tables["title"], terse=tables["terse"], desc=tables["desc"], attr=tables["attr"],
        mult=tables["mult"], value_p=tables["p"],
    )


# --------------------------------------------------------------------------- catalogue


@dataclass(frozen=True)
class Brands:
    names: np.ndarray  # (B,) object
    department: np.ndarray
    terse: np.ndarray  # brand writes abbreviated colours / materials in titles
    premium: np.ndarray  # price multiplier
    quality: np.ndarray  # rating offset
    line_names: np.ndarray  # LINE_WORDS then NEW_LINE_WORDS
    lines: np.ndarray  # (B, LINES_PER_BRAND) index into line_names
    new_lines: np.ndarray  # (B, NEW_LINES_PER_BRAND)
    type_brands: np.ndarray  # (T, BRANDS_PER_TYPE) brands that make each type
    type_brand_p: np.ndarray  # their market shares (Zipf)


def make_brands(rng: np.random.Generator) -> Brands:
    """Generated brand names per department, each with a few product lines."""
    tt = type_table()
    n_dept = len(V.DEPARTMENTS)
    words = {w.lower() for w in V.LINE_WORDS + V.NEW_LINE_WORDS}
    combos = [h + t for h in V.BRAND_HEADS for t in V.BRAND_TAILS if (h + t).lower() not in words]
    nb = n_dept * BRANDS_PER_DEPARTMENT
    names = np.array(combos, object)[rng.permutation(len(combos))[:nb]]
    line_names = np.array(V.LINE_WORDS + V.NEW_LINE_WORDS, object)
    lines = np.argsort(rng.random((nb, len(V.LINE_WORDS))), axis=1)[:, :LINES_PER_BRAND]
    new_lines = len(V.LINE_WORDS) + np.argsort(rng.random((nb, len(V.NEW_LINE_WORDS))), axis=1)[
        :, :NEW_LINES_PER_BRAND]
    pick = np.argsort(rng.random((tt.n, BRANDS_PER_DEPARTMENT)), axis=1)[:, :BRANDS_PER_TYPE]
    share = 1.0 / np.arange(1, BRANDS_PER_TYPE + 1)
    return Brands(
        names=names,
        department=np.repeat(np.arange(n_dept), BRANDS_PER_DEPARTMENT),
        terse=rng.random(nb) < TERSE_BRAND_SHARE,
        premium=np.exp(0.2 * rng.standard_normal(nb)),
        quality=0.25 * rng.standard_normal(nb),
        line_names=line_names,
        lines=lines,
        new_lines=new_lines,
        type_brands=tt.department[:, None] * BRANDS_PER_DEPARTMENT + pick,
        type_brand_p=np.broadcast_to(share / share.sum(), pick.shape).copy(),
    )


@dataclass
class Items:
    """Products as numbers only (no text yet)."""

    type: np.ndarray  # int16 index into vocabulary.TYPES
    brand: np.ndarray  # int32 index into Brands.names
    line: np.ndarray  # int32 index into Brands.line_names
    slots: np.ndarray  # (n, MAX_SLOTS) int16 value index per attribute slot of the type, -1 = none
    price: np.ndarray
    rating: np.ndarray
    popularity: np.ndarray


def make_items(n: int, rng: np.random.Generator, brands: Brands, new: bool = False) -> Items:
    """Sample ``n`` products: type, brand, line, attribute values, price, rating, popularity."""
    tt = type_table()
    ptype = rng.choice(tt.n, size=n, p=tt.popularity / tt.popularity.sum()).astype(np.int16)
    brand = np.empty(n, np.int32)
    slots = np.full((n, V.MAX_SLOTS), -1, np.int16)
    mult = np.ones(n)
    brand_share = np.empty(n)
    order, bounds = _groups(ptype, tt.n)
    for ti in range(tt.n):  # vectorised within a type: cost is linear in n
        idx = order[bounds[ti]:bounds[ti + 1]]
        if not len(idx):
            continue
        k = rng.choice(BRANDS_PER_TYPE, size=len(idx), p=brands.type_brand_p[ti])
        brand[idx] = brands.type_brands[ti, k]
        brand_share[idx] = brands.type_brand_p[ti, k]
        for j, p in enumerate(tt.value_p[ti]):
            v = rng.choice(len(p), size=len(idx), p=p)
            slots[idx, j] = v
            mult[idx] *= tt.mult[ti][j][v]
    line_table = brands.new_lines if new else brands.lines
    line = line_table[brand, rng.integers(0, line_table.shape[1], n)].astype(np.int32)
    raw = tt.price[ptype] * brands.premium[brand] * mult * np.exp(0.25 * rng.standard_normal(n))
    rating = np.clip(4.2 + brands.quality[brand] + 0.45 * rng.standard_normal(n), 1.0, 5.0).round(1)
    # Long tail: lognormal item appeal on top of type traffic and brand market share.
    popularity = (tt.popularity[ptype] * np.sqrt(brand_share / brands.type_brand_p.max())
                  * np.exp(1.2 * rng.standard_normal(n)) * 100.0)
    if new:
        popularity *= NEW_PRODUCT_POPULARITY
    return Items(ptype, brand, line, slots, _shelf_price(raw), rating, popularity.round(3))


def _shelf_price(raw: np.ndarray) -> np.ndarray:
    """Shelf prices: x.99 above $5, cents below."""
    raw = np.maximum(raw, 0.5)
    return np.where(raw >= 5, np.floor(raw) + 0.99, raw.round(2))


@dataclass
class Texts:
    title: np.ndarray
    description: np.ndarray
    attributes: np.ndarray


def render_items(items: Items, brands: Brands, rng: np.random.Generator, progress: bool = False) -> Texts:
    """Titles in terse listing style, descriptions in fuller language, attribute strings.

    Titles hold brand, line, attribute title forms and the type noun; descriptions add the
    type's *use* phrases (and sometimes a synonym) that titles never contain, which is
    what makes descriptive and synonym queries hard for title-only lexical matching.
    """
    tt = type_table()
    n = len(items.type)
    title = np.empty(n, object)
    description = np.empty(n, object)
    attributes = np.empty(n, object)
    brand_name = brands.names[items.brand]
    line_name = brands.line_names[items.line]
    terse = brands.terse[items.brand]
    opening = rng.integers(0, 3, n)
    swap = rng.random(n) < 0.5
    with_synonym = rng.random(n) < SYNONYM_IN_DESCRIPTION
    pick = rng.integers(0, 2**31, n)
    order, bounds = _groups(items.type, tt.n)
    for ti in tqdm(range(tt.n), desc="catalogue", unit="type", disable=not progress, leave=False):
        idx = order[bounds[ti]:bounds[ti + 1]]
        if not len(idx):
            continue
        pt = V.TYPES[ti]
        b, ln = brand_name[idx], line_name[idx]
        parts: list[tuple[int, int, np.ndarray]] = []
        feats, attrs = [], []
        for j, (kind, _) in enumerate(pt.attributes):
            v = items.slots[idx, j]
            form = np.where(terse[idx], tt.terse[ti][j][v], tt.title[ti][j][v])
            parts.append((V.SLOT_ORDER[V.KINDS[kind].slot], j, form))
            feats.append(tt.desc[ti][j][v])
            attrs.append(tt.attr[ti][j][v])
        parts.sort(key=lambda p: (p[0], p[1]))
        t = b + " " + ln
        for slot, _, form in parts:
            if slot < V.SLOT_ORDER["in"]:
                t = t + " " + form
        t = t + " " + pt.noun
        for slot, _, form in parts:
            if slot == V.SLOT_ORDER["in"]:
                t = t + " in " + form
            elif slot == V.SLOT_ORDER["post"]:
                t = t + ", " + form
            elif slot == V.SLOT_ORDER["pack"]:
                t = t + " (" + form + ")"
        title[idx] = t

        o = opening[idx]
        d = np.where(o == 0, ln + " " + pt.noun + " by " + b + ".",
                     np.where(o == 1, "The " + b + " " + ln + " " + pt.noun + ".",
                              "Meet the " + ln + " " + pt.noun + " from " + b + "."))
        uses = np.array(pt.uses[:2], object)
        s = swap[idx].astype(int)
        d = d + " Ideal for " + uses[s] + "."
        for f in feats:
            d = d + " " + f
        d = d + " Also great for " + uses[1 - s] + "."
        syn = np.array(pt.synonyms, object)[pick[idx] % len(pt.synonyms)]
        description[idx] = np.where(with_synonym[idx], d + " Think of it as the perfect " + syn + ".", d)
        a = attrs[0]
        for x in attrs[1:]:
            a = a + "; " + x
        attributes[idx] = a
    return Texts(title, description, attributes)


@dataclass
class Catalog:
    product_id: np.ndarray  # object
    items: Items
    texts: Texts
    brands: Brands
    is_new: np.ndarray  # introduced by the new_products drift knob

    def __len__(self) -> int:
        return len(self.product_id)

    def frame(self) -> pd.DataFrame:
        categories = np.array([t.category for t in V.TYPES], object)
        return pd.DataFrame({
            "product_id": self.product_id,
            "title": self.texts.title,
            "description": self.texts.description,
            "brand": self.brands.names[self.items.brand],
            "category": categories[self.items.type],
            "attributes": self.texts.attributes,
            "price": self.items.price.astype(float),
            "rating": self.items.rating.astype(float),
            "popularity": self.items.popularity.astype(float),
        }, columns=list(CATALOG_COLUMNS))


def _ids(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    return np.array([f"{prefix}{i:0{width}d}" for i in numbers], object)


def _product_width(n: int) -> int:
    return max(6, len(str(2 * n)))  # room for the ids of replacement products


def build_catalog(cfg: WorldConfig, seed: int, progress: bool = False) -> Catalog:
    """The base catalogue (before drift): ``cfg.n_products`` products."""
    rng = _rng(seed, "catalog")
    brands = make_brands(rng)
    items = make_items(cfg.n_products, rng, brands)
    texts = render_items(items, brands, rng, progress)
    ids = _ids("P", np.arange(cfg.n_products), _product_width(cfg.n_products))
    return Catalog(ids, items, texts, brands, np.zeros(cfg.n_products, bool))


def apply_catalog_drift(catalog: Catalog, cfg: WorldConfig, seed: int) -> Catalog:
    """``new_products``: replace that share of products by new ones (new ids, new product
    lines, low popularity); ``price_shift``: multiply every price by ``1 + price_shift``."""
    drift = cfg.drift
    items, texts = catalog.items, catalog.texts
    ids, is_new = catalog.product_id.copy(), catalog.is_new.copy()
    n_new = int(round(drift.new_products * len(catalog)))
    if n_new:
        rng = _rng(seed, "new_products")
        where = np.sort(rng.choice(len(catalog), size=n_new, replace=False))
        fresh = make_items(n_new, rng, catalog.brands, new=True)
        fresh_texts = render_items(fresh, catalog.brands, rng)
        items = Items(**{k: v.copy() for k, v in vars(items).items()})
        texts = Texts(**{k: v.copy() for k, v in vars(texts).items()})
        for k, v in vars(fresh).items():
            getattr(items, k)[where] = v
        for k, v in vars(fresh_texts).items():
            getattr(texts, k)[where] = v
        ids[where] = _ids("P", len(catalog) + np.arange(n_new), _product_width(len(catalog)))
        is_new[where] = True
        logger.info("drift: replaced %d products (%.0f%%) with new ones", n_new, 100 * drift.new_products)
    if drift.price_shift:
        items = Items(**{**vars(items), "price": (items.price * (1 + drift.price_shift)).round(2)})
        logger.info("drift: prices multiplied by %.2f", 1 + drift.price_shift)
    return Catalog(ids, items, texts, catalog.brands, is_new)


# --------------------------------------------------------------------------- queries


@dataclass
class Rendered:
    """One rendered query, kept in parts so drift can swap the type phrase."""

    brand: str
    attrs: list[str]
    phrase: str  # how the query names the type: noun, synonym, use phrase or slang
    price: str
    attrs_first: bool
    descriptive: bool
    synonym: bool
    abbreviation: bool  # True when an abbreviated / full form applied
    abbreviated_noun: bool  # ... and it was the noun (lost if the noun is replaced)
    misspelling: bool
    misspelled_phrase: bool  # the misspelling hit the type phrase

    def text(self) -> str:
        body = self.attrs + [self.phrase] if (self.attrs_first or self.descriptive) else [self.phrase] + self.attrs
        return " ".join(w for w in [self.brand, *body, self.price] if w)


@dataclass
class QuerySet:
    query_id: np.ndarray
    text: np.ndarray
    type: np.ndarray  # int16 intended product type
    req: np.ndarray  # (Q, MAX_SLOTS) int16 required value per slot, -1 = any
    brand: np.ndarray  # int32 required brand, -1 = any
    max_price: np.ndarray  # price band ("under 50"), inf = none
    weight: np.ndarray  # share of traffic (sums to 1)
    frequency: np.ndarray  # head | torso | tail
    gap: dict[str, np.ndarray]  # synonym / abbreviation / misspelling / descriptive
    slang: np.ndarray  # uses an unseen slang word (new_vocabulary drift)
    parts: list[Rendered]

    def __len__(self) -> int:
        return len(self.query_id)

    @property
    def department(self) -> np.ndarray:
        return type_table().department[self.type]

    def frame(self, first_seen: np.ndarray) -> pd.DataFrame:
        data = {"query_id": self.query_id, "query": self.text, "frequency": self.frequency}
        data.update({f"gap_{k}": self.gap[k] for k in GAP_TAGS})
        data["timestamp"] = first_seen
        return pd.DataFrame(data, columns=[*QUERY_COLUMNS, "timestamp"])


_KEYBOARD = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]
_NEIGHBOURS = {
    c: "".join(row[j] for j in (i - 1, i + 1) if 0 <= j < len(row))
    for row in _KEYBOARD for i, c in enumerate(row)
}


def misspell(word: str, r: int) -> str:
    """A typo of ``word`` (4+ letters) chosen by the integer ``r``: swap two letters, double
    one, hit a neighbouring key, or drop one. The first letter is kept (shoppers rarely get
    it wrong) and the result always differs from ``word``."""
    i = 1 + (r // 4) % (len(word) - 2)  # 1 .. len - 2, so word[i + 1] exists
    op = r % 4
    if op == 1 and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if op == 2:
        return word[:i] + word[i] + word[i:]
    if op == 3 and word[i] in _NEIGHBOURS:
        keys = _NEIGHBOURS[word[i]]
        return word[:i] + keys[(r // 64) % len(keys)] + word[i + 1:]
    return word[:i] + word[i + 1:]


def _nice_ceiling(price: np.ndarray) -> np.ndarray:
    """Round up to a price-band number shoppers type ("under 50"); inf above the list."""
    k = np.searchsorted(NICE_PRICES, price)
    return np.where(k < len(NICE_PRICES), NICE_PRICES[np.minimum(k, len(NICE_PRICES) - 1)], np.inf)


@dataclass
class Intents:
    type: np.ndarray
    req: np.ndarray
    brand: np.ndarray
    max_price: np.ndarray
    n_constraints: np.ndarray


def sample_intents(items: Items, m: int, rng: np.random.Generator) -> Intents:
    """Shopper intents seeded from real products (people look for things that exist), so
    every intent has at least one perfect match in the base catalogue."""
    tt = type_table()
    s = rng.choice(len(items.type), size=m, p=items.popularity / items.popularity.sum())
    t = items.type[s]
    w = np.zeros((m, V.MAX_SLOTS + 2))
    w[:, :V.MAX_SLOTS] = np.arange(V.MAX_SLOTS) < tt.n_slots[t][:, None]
    w[:, V.MAX_SLOTS] = 0.45  # brand
    w[:, V.MAX_SLOTS + 1] = 0.35  # price band
    k = rng.choice(len(CONSTRAINT_COUNT_P), size=m, p=CONSTRAINT_COUNT_P)
    with np.errstate(divide="ignore"):
        key = np.log(w) + rng.gumbel(size=w.shape)  # weighted sampling without replacement
    rank = np.argsort(np.argsort(-key, axis=1), axis=1)
    chosen = (rank < k[:, None]) & (w > 0)
    cap = _nice_ceiling(items.price[s] * rng.uniform(1.05, 1.6, m))
    chosen[:, -1] &= np.isfinite(cap)
    return Intents(
        type=t,
        req=np.where(chosen[:, :V.MAX_SLOTS], items.slots[s], -1).astype(np.int16),
        brand=np.where(chosen[:, V.MAX_SLOTS], items.brand[s], -1).astype(np.int32),
        max_price=np.where(chosen[:, -1], cap, np.inf),
        n_constraints=chosen.sum(1),
    )


def _strip_article(phrase: str) -> str:
    return re.sub(r"^(a|an|the) ", "", phrase)


def render_intents(intents: Intents, brands: Brands, cfg: WorldConfig, rng: np.random.Generator) -> list[Rendered]:
    """Turn intents into query text, applying the vocabulary-gap mechanisms at the configured
    rates. A mechanism only counts (and is tagged) where it really changes a word."""
    m = len(intents.type)
    tt = type_table()
    ps, pd_ = cfg.synonym_rate, cfg.descriptive_rate
    if ps + pd_ > 1:
        ps, pd_ = ps / (ps + pd_), pd_ / (ps + pd_)
    u = rng.random(m)
    mode = np.where(u < ps, SYN, np.where(u < ps + pd_, DESC, CANON))
    values = [[V.TYPES[t].attributes[j][1][v] for j, v in enumerate(row) if v >= 0]
              for t, row in zip(intents.type, intents.req, strict=True)]
    attr_alt = np.array([any(v.alts for v in vs) for vs in values], bool)
    noun_alt = (mode == CANON) & tt.has_abbr[intents.type]
    eligible = attr_alt | noun_alt
    # Rates are shares of all queries: boost the draw among queries the mechanism can touch.
    p_abbr = min(1.0, cfg.abbreviation_rate / max(eligible.mean(), 1e-9))
    abbr = eligible & (rng.random(m) < p_abbr)
    u_typo = rng.random(m)
    attrs_first = rng.random(m) < 0.75
    r = rng.integers(0, 2**31, size=(m, 6))
    out = []
    for i in range(m):
        pt = V.TYPES[intents.type[i]]
        vs = values[i]
        attrs = [v.plain for v in vs]
        if mode[i] == SYN:
            phrase = pt.synonyms[r[i, 0] % len(pt.synonyms)]
        elif mode[i] == DESC:
            phrase = _strip_article(pt.uses[r[i, 1] % len(pt.uses)])
        else:
            phrase = pt.noun.lower()
        did_abbr = abbr_noun = False
        if abbr[i]:
            alt_slots = [j for j, v in enumerate(vs) if v.alts]
            if noun_alt[i] and (not alt_slots or r[i, 2] % 5 < 2):
                phrase = pt.abbreviations[r[i, 3] % len(pt.abbreviations)]
                abbr_noun = True
            else:
                j = alt_slots[r[i, 3] % len(alt_slots)]
                attrs[j] = vs[j].alts[(r[i, 3] // 7) % len(vs[j].alts)]
            did_abbr = True
        rend = Rendered(
            brand=brands.names[intents.brand[i]].lower() if intents.brand[i] >= 0 else "",
            attrs=attrs, phrase=phrase,
            price=f"under {intents.max_price[i]:.0f}" if np.isfinite(intents.max_price[i]) else "",
            attrs_first=bool(attrs_first[i]), descriptive=mode[i] == DESC, synonym=mode[i] == SYN,
            abbreviation=did_abbr, abbreviated_noun=abbr_noun, misspelling=False, misspelled_phrase=False,
        )
        out.append(rend)
    typo_ok = np.array([any(_typo_targets(rend)) for rend in out], bool)
    p_typo = min(1.0, cfg.misspelling_rate / max(typo_ok.mean(), 1e-9))
    for i in np.nonzero(typo_ok & (u_typo < p_typo))[0]:
        _apply_typo(out[i], int(r[i, 4]), int(r[i, 5]))
    return out


def _typo_targets(rend: Rendered) -> tuple[list[str], list[tuple[int, str]]]:
    """Words a typo may hit (4+ letters): in the type phrase, and in the attributes."""
    def long_words(text: str) -> list[str]:
        return [w for w in text.split() if len(w) >= 4 and w.isalpha()]

    return long_words(rend.phrase), [(k, w) for k, a in enumerate(rend.attrs) for w in long_words(a)]


def _apply_typo(rend: Rendered, pick: int, edit: int) -> None:
    """Misspell one word of at least 4 letters, preferably in the type phrase."""
    in_phrase, elsewhere = _typo_targets(rend)
    if in_phrase and (pick % 10 < 7 or not elsewhere):
        words = rend.phrase.split()
        target = in_phrase[(pick // 10) % len(in_phrase)]
        words[words.index(target)] = misspell(target, edit)
        rend.phrase = " ".join(words)
        rend.misspelled_phrase = True
    elif elsewhere:
        k, target = elsewhere[(pick // 10) % len(elsewhere)]
        words = rend.attrs[k].split()
        words[words.index(target)] = misspell(target, edit)
        rend.attrs[k] = " ".join(words)
    else:
        return
    rend.misspelling = True


def _distinct_queries(cfg: WorldConfig, items: Items, brands: Brands, rng: np.random.Generator
                      ) -> list[tuple[Intents, int, Rendered]]:
    """Up to ``cfg.n_queries`` rendered intents with distinct texts."""
    chosen: list[tuple[Intents, int, Rendered]] = []
    seen: set[str] = set()
    for _ in range(50):  # duplicates (e.g. many bare "sofa" intents) are dropped; refill
        need = cfg.n_queries - len(chosen)
        if need <= 0:
            break
        intents = sample_intents(items, max(64, 2 * need), rng)
        for i, rend in enumerate(render_intents(intents, brands, cfg, rng)):
            text = rend.text()
            if text not in seen and len(chosen) < cfg.n_queries:
                seen.add(text)
                chosen.append((intents, i, rend))
    return chosen


_RATE_FIELDS = {k: f"{k}_rate" for k in GAP_TAGS}


def build_queries(cfg: WorldConfig, items: Items, brands: Brands, seed: int) -> QuerySet:
    """``cfg.n_queries`` distinct query texts with intents, gap tags and a Zipf traffic curve.

    Dropping duplicate texts removes mostly plain queries (every bare "sofa" intent reads
    the same), which would push the gap shares above the configured rates; one
    calibration round rescales the rates so the final table matches them.
    """
    pilot = _distinct_queries(cfg, items, brands, _rng(seed, "queries", 0))
    update = {}
    for gap, field in _RATE_FIELDS.items():
        achieved = np.mean([getattr(rend, gap) for _, _, rend in pilot]) if pilot else 0.0
        target = getattr(cfg, field)
        if target > 0 and achieved > 0:
            update[field] = float(min(1.0, target * target / achieved))
    rng = _rng(seed, "queries", 1)
    chosen = _distinct_queries(cfg.model_copy(update=update), items, brands, rng)
    if len(chosen) < cfg.n_queries:
        logger.warning("only %d distinct queries could be generated (asked for %d)", len(chosen), cfg.n_queries)
    n = len(chosen)
    tt = type_table()

    def col(name: str) -> np.ndarray:
        return np.array([getattr(it, name)[i] for it, i, _ in chosen])

    qtype, n_constraints = col("type").astype(np.int16), col("n_constraints")
    parts = [rend for _, _, rend in chosen]
    flags = {k: np.array([getattr(p, k) for p in parts], bool) for k in GAP_TAGS}
    # Traffic: general queries of popular types form the head; typos and long phrasings the tail.
    prior = (np.log(tt.popularity[qtype]) - 0.9 * n_constraints - 1.2 * flags["misspelling"]
             - 0.5 * flags["descriptive"] + 0.8 * rng.gumbel(size=n))
    rank = np.empty(n, int)
    rank[np.argsort(-prior, kind="stable")] = np.arange(n)
    weight = (rank + 1.0) ** -QUERY_ZIPF
    weight /= weight.sum()
    query_id = _ids("Q", np.arange(n), max(5, len(str(n - 1))))
    queries = QuerySet(
        query_id=query_id,
        text=np.array([p.text() for p in parts], object),
        type=qtype,
        req=np.stack([it.req[i] for it, i, _ in chosen]).astype(np.int16) if n else np.empty((0, V.MAX_SLOTS), np.int16),
        brand=col("brand").astype(np.int32),
        max_price=col("max_price").astype(float),
        weight=weight,
        frequency=frequency_buckets(pd.Series(weight, index=query_id)).to_numpy(),
        gap=flags,
        slang=np.zeros(n, bool),
        parts=parts,
    )
    return apply_vocabulary_drift(queries, cfg, seed)


def apply_vocabulary_drift(queries: QuerySet, cfg: WorldConfig, seed: int) -> QuerySet:
    """``new_vocabulary``: that share of queries names the type by an unseen slang word.

    Such a query counts as a synonym gap; a misspelling or abbreviation that hit the
    replaced phrase no longer applies. A rewrite that would collide with another query's
    text is skipped, keeping texts unique.
    """
    share = cfg.drift.new_vocabulary
    n = len(queries)
    if not share or not n:
        return queries
    rng = _rng(seed, "new_vocabulary")
    slang = V.slang_words()
    texts = set(queries.text)
    changed = 0
    for i in rng.permutation(n)[: int(round(share * n))]:
        old = queries.parts[i]
        new = Rendered(**{**vars(old), "attrs": list(old.attrs), "phrase": slang[queries.type[i]],
                          "synonym": True, "descriptive": False,
                          "misspelling": old.misspelling and not old.misspelled_phrase, "misspelled_phrase": False,
                          "abbreviation": old.abbreviation and not old.abbreviated_noun, "abbreviated_noun": False})
        text = new.text()
        if text in texts:
            continue
        texts.discard(queries.text[i])
        texts.add(text)
        queries.parts[i], queries.text[i], queries.slang[i] = new, text, True
        for k in GAP_TAGS:
            queries.gap[k][i] = getattr(new, k)
        changed += 1
    logger.info("drift: %d queries (%.0f%%) use unseen slang for the product type", changed, 100 * changed / n)
    return queries


# --------------------------------------------------------------------------- relevance and pools


def grade_pairs(catalog: Catalog, queries: QuerySet, q: np.ndarray, p: np.ndarray) -> np.ndarray:
    """True relevance 0..3 of (query q, product p) pairs.

    3 = the type and every requested attribute, brand and price band match;
    2 = the type matches, something requested does not; 1 = a related type (same
    subcategory, or same department for a type alone in its subcategory); 0 = unrelated.
    """
    items = catalog.items
    qt, pt = queries.type[q], items.type[p]
    req = queries.req[q]
    ok = ((req < 0) | (req == items.slots[p])).all(axis=1)
    ok &= (queries.brand[q] < 0) | (queries.brand[q] == items.brand[p])
    ok &= items.price[p] <= queries.max_price[q]
    grade = np.where(qt == pt, np.where(ok, 3, 2), np.where(type_table().related[qt, pt], 1, 0))
    return grade.astype(np.int8)


@dataclass
class Pools:
    """Each query's candidate pool (sorted by query), with per-pair simulation constants."""

    query: np.ndarray  # (n_pairs,) query index
    product: np.ndarray  # (n_pairs,) product index
    grade: np.ndarray  # true relevance 0..3
    ranker_score: np.ndarray  # production ranker score before per-session noise
    p_click: np.ndarray  # P(click | examined)
    p_cart: np.ndarray  # P(add to cart | click)
    p_buy: np.ndarray  # P(purchase | add to cart)
    matrix: np.ndarray  # (Q, candidate_pool) pair index per query, -1 = empty slot

    def __len__(self) -> int:
        return len(self.query)


def _sample_in_types(types: np.ndarray, order: np.ndarray, bounds: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One uniformly drawn product of each given type (-1 where the type has none)."""
    count = bounds[types + 1] - bounds[types]
    pos = bounds[types] + (rng.random(types.shape) * count).astype(np.int64)
    return np.where(count > 0, order[np.minimum(pos, len(order) - 1)], -1)


def build_pools(cfg: WorldConfig, catalog: Catalog, queries: QuerySet, seed: int) -> Pools:
    """Candidate pools: products of the query's type (retrieval prefers those matching the
    request), products of related types, and random products."""
    rng = _rng(seed, "pools")
    tt = type_table()
    n_q, n_p, size = len(queries), len(catalog), cfg.candidate_pool
    quota = np.array([round(TYPE_SHARE * size), round(SIBLING_SHARE * size)])
    quota = np.append(quota, size - quota.sum())
    order, bounds = _groups(catalog.items.type, tt.n)
    qt = queries.type.astype(np.int64)

    draws = [OVERSAMPLE[s] * int(quota[s]) for s in range(3)]
    draws[2] += int(quota[0] + quota[1])  # spare random draws fill pools of rare types
    same = _sample_in_types(np.repeat(qt, draws[0]), order, bounds, rng)
    n_rel = (tt.rel_start[qt + 1] - tt.rel_start[qt]).repeat(draws[1])
    rel_pos = tt.rel_start[qt].repeat(draws[1]) + (rng.random(len(n_rel)) * n_rel).astype(np.int64)
    rel_type = np.where(n_rel > 0, tt.rel_types[np.minimum(rel_pos, len(tt.rel_types) - 1)], 0)
    sibling = np.where(n_rel > 0, _sample_in_types(rel_type, order, bounds, rng), -1)
    random = rng.integers(0, n_p, n_q * draws[2])
    q = np.concatenate([np.repeat(np.arange(n_q), d) for d in draws])
    p = np.concatenate([same, sibling, random])
    src = np.concatenate([np.full(n_q * d, s, np.int8) for s, d in enumerate(draws)])
    keep = p >= 0
    q, p, src = q[keep], p[keep], src[keep]

    # One row per (query, product), keeping the most specific source.
    key = q.astype(np.int64) * n_p + p
    o = np.lexsort((src, key))
    first = np.ones(len(o), bool)
    first[1:] = key[o][1:] != key[o][:-1]
    o = o[first]
    q, p, src = q[o], p[o], src[o]
    grade = grade_pairs(catalog, queries, q, p)
    pop = np.log(catalog.items.popularity + 1e-9)
    zpop = (pop - pop.mean()) / (pop.std() + 1e-9)
    # Retrieval: exact matches first within the type source, popular items among the rest.
    score = np.where(src == 0, grade, 0.3 * zpop[p]) + 0.5 * rng.gumbel(size=len(q))

    # Fill each source's quota, then top up short pools (e.g. a type with few products).
    rank = _rank_within(q * 3 + src, -score)
    take = rank < quota[src]
    short = size - np.bincount(q[take], minlength=n_q)
    rest = ~take
    rank2 = _rank_within(q[rest], src[rest] * 100.0 - score[rest])
    fill = np.zeros(len(q), bool)
    fill[np.nonzero(rest)[0]] = rank2 < short[q[rest]]
    take |= fill
    q, p, grade = q[take], p[take], grade[take]
    o = np.lexsort((-score[take], q))
    q, p, grade = q[o], p[o], grade[o]

    n = len(q)
    slot = _rank_within(q, np.arange(n, dtype=float))
    matrix = np.full((n_q, size), -1, np.int64)
    matrix[q, slot] = np.arange(n)

    items = catalog.items
    noise = cfg.production_noise
    ranker = grade + RANKER_POPULARITY * zpop[p] + noise * RANKER_STATIC_NOISE * rng.standard_normal(n)
    appeal = np.exp(APPEAL_SIGMA * rng.standard_normal(n) - APPEAL_SIGMA**2 / 2)
    # Carts and purchases favour good ratings and fair prices (relative to the type).
    type_price = np.array([np.median(items.price[order[bounds[t]:bounds[t + 1]]]) if bounds[t + 1] > bounds[t] else 1.0
                           for t in range(tt.n)])
    rel_price = items.price[p] / type_price[items.type[p]]
    taste = np.exp(0.6 * (items.rating[p] - 4.2)) * rel_price**-0.25
    taste /= np.exp(0.6 * (items.rating - 4.2)).mean()  # keep the configured means
    p_click = np.clip(cfg.click_base * ATTRACT[grade] * appeal, 0, 1)
    p_cart = np.clip(cfg.add_to_cart_rate * ATC_BY_GRADE[grade] * taste, 0, 0.95)
    p_buy = np.clip(cfg.purchase_rate * BUY_BY_GRADE[grade] * rel_price**-0.2, 0, 0.95)
    return Pools(q, p, grade, ranker, p_click, p_cart, p_buy, matrix)


def _rank_within(group: np.ndarray, value: np.ndarray) -> np.ndarray:
    """0-based rank of each element by ascending ``value`` within its ``group``."""
    o = np.lexsort((value, group))
    g = group[o]
    start = np.ones(len(o), bool)
    start[1:] = g[1:] != g[:-1]
    first = np.maximum.accumulate(np.where(start, np.arange(len(o)), 0))
    rank = np.empty(len(o), np.int64)
    rank[o] = np.arange(len(o)) - first
    return rank


# --------------------------------------------------------------------------- the world


@dataclass
class World:
    cfg: WorldConfig
    seed: int
    catalog: Catalog
    queries: QuerySet
    pools: Pools
    shift_department: str  # department that the category_shift knob sends traffic to

    @property
    def list_length(self) -> int:
        """Results one session shows: the list size, or the whole pool when that is smaller."""
        return min(self.cfg.list_size, self.cfg.candidate_pool)


def build_world(cfg: WorldConfig, seed: int, progress: bool = False) -> World:
    """Everything but the sessions: catalogue, queries, drift, candidate pools."""
    t0 = time.perf_counter()
    base = build_catalog(cfg, seed, progress)
    logger.info("catalogue: %d products of %d types from %d brands (%.1fs)",
                len(base), len(set(base.items.type.tolist())), len(base.brands.names), time.perf_counter() - t0)
    t1 = time.perf_counter()
    # Intents come from the base catalogue so that catalogue drift leaves the queries alone.
    queries = build_queries(cfg, base.items, base.brands, seed)
    logger.info("queries: %d (%s), gap rates %s (%.1fs)", len(queries),
                ", ".join(f"{b} {np.sum(queries.frequency == b)}" for b in ("head", "torso", "tail")),
                {k: round(float(v.mean()), 3) for k, v in queries.gap.items()}, time.perf_counter() - t1)
    catalog = apply_catalog_drift(base, cfg, seed)
    t2 = time.perf_counter()
    pools = build_pools(cfg, catalog, queries, seed)
    logger.info("candidate pools: %d pairs, %.1f per query, grade shares %s (%.1fs)", len(pools),
                len(pools) / max(len(queries), 1),
                np.round(np.bincount(pools.grade, minlength=4) / max(len(pools), 1), 3).tolist(),
                time.perf_counter() - t2)
    rng = _rng(seed, "shift_department")
    present = np.unique(queries.department)
    shift = V.DEPARTMENTS[int(rng.choice(present))] if len(present) else V.DEPARTMENTS[0]
    return World(cfg, seed, catalog, queries, pools, shift)


# --------------------------------------------------------------------------- sessions


@dataclass
class SessionPlan:
    query: np.ndarray  # (S,) query index, sessions in time order
    timestamp: np.ndarray  # (S,) datetime64[ns]


def plan_sessions(world: World) -> SessionPlan:
    """Which query each session issues, and when.

    Sessions follow query traffic, except that every query is issued at least once when
    there are enough sessions (the query table lists only queries seen in the log), and
    ``category_shift`` sends that share of sessions to queries of one department.
    """
    cfg, queries = world.cfg, world.queries
    rng = _rng(world.seed, "plan")
    n_s, n_q = cfg.n_sessions, len(queries)
    forced = np.arange(n_q) if n_s >= n_q else np.empty(0, np.int64)
    rest = rng.choice(n_q, size=n_s - len(forced), p=queries.weight)
    shift = cfg.drift.category_shift
    if shift:
        shift_rng = _rng(world.seed, "category_shift")
        dept = V.DEPARTMENTS.index(world.shift_department)
        pool = np.nonzero(queries.department == dept)[0]
        moved = shift_rng.random(len(rest)) < shift
        w = queries.weight[pool] / queries.weight[pool].sum()
        rest[moved] = pool[shift_rng.choice(len(pool), size=int(moved.sum()), p=w)]
        logger.info("drift: %d sessions (%.0f%%) moved to %s", moved.sum(), 100 * shift, world.shift_department)
    query = np.concatenate([forced, rest])[rng.permutation(n_s)]
    day = rng.integers(0, cfg.days, n_s)
    hour = rng.choice(24, size=n_s, p=HOURLY / HOURLY.sum())
    ms = day * 86_400_000 + hour * 3_600_000 + (rng.random(n_s) * 3_600_000).astype(np.int64)
    ns = ms * 10**6  # whole milliseconds, like a real log
    return SessionPlan(query, START + np.sort(ns).astype("timedelta64[ns]"))


@dataclass
class ImpressionBatch:
    """Per-impression events of a run of sessions (numpy arrays of equal length)."""

    session: np.ndarray  # global session index (time order)
    timestamp: np.ndarray  # datetime64[ns]
    query: np.ndarray  # query index
    product: np.ndarray  # product index
    pair: np.ndarray  # index into the pools
    position: np.ndarray  # 1-based rank shown
    examined: np.ndarray
    clicked: np.ndarray
    added_to_cart: np.ndarray
    purchased: np.ndarray

    def __len__(self) -> int:
        return len(self.session)


def simulate_sessions(world: World, plan: SessionPlan | None = None, progress: bool = False) -> Iterator[ImpressionBatch]:
    """Simulate the sessions of ``plan`` in batches of ``SESSION_CHUNK``.

    Per session the production ranker adds fresh noise to its pool scores and shows the
    top ``list_size``; the shopper examines position k with probability
    ``k ** -position_bias``, clicks an examined item with ``p_click``, then adds to cart
    and buys with the pair's funnel probabilities. Each batch draws from its own stream
    (seeded by the batch number), so a replay can start at any batch.
    """
    cfg, pools = world.cfg, world.pools
    plan = plan if plan is not None else plan_sessions(world)
    n_s = len(plan.query)
    shown = world.list_length
    examine = np.arange(1, shown + 1, dtype=float) ** -cfg.position_bias
    bar = tqdm(total=n_s, desc="sessions", unit="session", disable=not progress, leave=False)
    for c, lo in enumerate(range(0, n_s, SESSION_CHUNK)):
        rng = _rng(world.seed, "sessions", c)
        hi = min(lo + SESSION_CHUNK, n_s)
        mat = pools.matrix[plan.query[lo:hi]]
        valid = mat >= 0
        noise = cfg.production_noise * RANKER_SESSION_NOISE * rng.standard_normal(mat.shape)
        score = np.where(valid, pools.ranker_score[np.maximum(mat, 0)] + noise, -np.inf)
        top = np.argsort(-score, axis=1, kind="stable")[:, :shown]
        pair = np.take_along_axis(mat, top, axis=1)
        ok = pair >= 0
        row, col = np.nonzero(ok)
        pair = pair[ok]
        n = len(pair)
        examined = rng.random(n) < examine[col]
        clicked = examined & (rng.random(n) < pools.p_click[pair])
        carted = clicked & (rng.random(n) < pools.p_cart[pair])
        bought = carted & (rng.random(n) < pools.p_buy[pair])
        yield ImpressionBatch(
            session=lo + row, timestamp=plan.timestamp[lo + row], query=pools.query[pair],
            product=pools.product[pair], pair=pair, position=(col + 1).astype(np.int16),
            examined=examined, clicked=clicked, added_to_cart=carted, purchased=bought,
        )
        bar.update(hi - lo)
    bar.close()


def iter_impressions(world: World, plan: SessionPlan | None = None, progress: bool = False) -> Iterator[pd.DataFrame]:
    """The raw event log, one row per impression, as DataFrames (one per session batch)."""
    qid, pid = world.queries.query_id, world.catalog.product_id
    for b in simulate_sessions(world, plan, progress):
        yield pd.DataFrame({
            "session_id": b.session, "timestamp": b.timestamp, "query_id": qid[b.query],
            "product_id": pid[b.product], "position": b.position.astype(np.int64),
            "examined": b.examined, "clicked": b.clicked, "added_to_cart": b.added_to_cart,
            "purchased": b.purchased,
        })


class InteractionTotals:
    """Running counts over impression batches per (pair, shown position), memory = pools x list
    length: the positions table, and summed over positions the interactions table."""

    def __init__(self, world: World):
        self.list_length = world.list_length
        # one row per count of schema.COUNT_COLUMNS; column = pair * list_length + position - 1
        self.cells = np.zeros((len(COUNT_COLUMNS), len(world.pools) * self.list_length), np.int64)
        self.first = np.full(len(world.pools), np.iinfo(np.int64).max, np.int64)

    def add(self, b: ImpressionBatch) -> None:
        cell = b.pair * self.list_length + b.position - 1
        n = self.cells.shape[1]
        for counts, hit in zip(self.cells, (None, b.clicked, b.added_to_cart, b.purchased), strict=True):
            counts += np.bincount(cell if hit is None else cell[hit], minlength=n)
        np.minimum.at(self.first, b.pair, b.timestamp.astype(np.int64))

    @property
    def by_position(self) -> np.ndarray:
        """(count, pair, position - 1) view of the counts, counts in ``COUNT_COLUMNS`` order."""
        return self.cells.reshape(len(COUNT_COLUMNS), -1, self.list_length)

    @property
    def impressions(self) -> np.ndarray:
        return self.by_position[0].sum(axis=1)

    @property
    def position_sum(self) -> np.ndarray:
        return self.by_position[0] @ np.arange(1, self.list_length + 1)

    def tables(self, world: World) -> dict[str, pd.DataFrame]:
        """The interactions and relevance tables (one row per (query, product) shown) and the
        positions table (one row per (query, product, position) shown)."""
        pools = world.pools
        impressions, clicks, add_to_carts, purchases = self.by_position.sum(axis=2)
        position_sum = self.position_sum
        shown = np.nonzero(impressions)[0]
        position = position_sum[shown] / impressions[shown]
        shown = shown[np.lexsort((position, pools.query[shown]))]
        qid = world.queries.query_id[pools.query[shown]]
        pid = world.catalog.product_id[pools.product[shown]]
        interactions = pd.DataFrame({
            "query_id": qid, "product_id": pid,
            "impressions": impressions[shown],
            "position": position_sum[shown] / impressions[shown],
            "clicks": clicks[shown], "add_to_carts": add_to_carts[shown],
            "purchases": purchases[shown],
            "timestamp": self.first[shown].astype("datetime64[ns]"),
        })
        # The world's click model with the position bias taken out: the chance that one
        # examined impression of the pair ends in a click, an add-to-cart, a purchase. These
        # are the unbiased per-task gains (logged rates also reflect where the pair was shown).
        p_click = pools.p_click[shown]
        p_cart = p_click * pools.p_cart[shown]
        relevance = pd.DataFrame({"query_id": qid, "product_id": pid,
                                  "relevance": pools.grade[shown].astype(np.int64),
                                  "expected_clicks": p_click, "expected_add_to_carts": p_cart,
                                  "expected_purchases": p_cart * pools.p_buy[shown]})
        return {INTERACTIONS: interactions, RELEVANCE: relevance, POSITIONS: self.positions(world)}

    def positions(self, world: World) -> pd.DataFrame:
        """One row per (query, product, position) shown, sorted by query (in the interactions
        table's order), product_id and position."""
        pools, counts = world.pools, self.by_position
        pair, slot = np.nonzero(counts[0])
        product_ids = world.catalog.product_id
        id_rank = np.empty(len(product_ids), np.int64)
        id_rank[np.argsort(product_ids.astype(str), kind="stable")] = np.arange(len(product_ids))
        order = np.lexsort((slot, id_rank[pools.product[pair]], pools.query[pair]))
        pair, slot = pair[order], slot[order]
        return pd.DataFrame({
            "query_id": world.queries.query_id[pools.query[pair]],
            "product_id": product_ids[pools.product[pair]],
            "position": (slot + 1).astype(np.int64),
            **{name: counts[i, pair, slot] for i, name in enumerate(COUNT_COLUMNS)},
        })


def first_seen(plan: SessionPlan, n_queries: int) -> np.ndarray:
    """When each query is first issued (NaT if never)."""
    out = np.full(n_queries, np.datetime64("NaT"), "datetime64[ns]")
    q, first = np.unique(plan.query, return_index=True)  # sessions are in time order
    out[q] = plan.timestamp[first]
    return out


def generate_world(cfg: WorldConfig, seed: int, progress: bool = True) -> dict[str, pd.DataFrame]:
    """Generate the simulated store: the canonical catalog, queries, interactions, relevance
    and positions tables (see :mod:`prodrank.data.schema`)."""
    t0 = time.perf_counter()
    world = build_world(cfg, seed, progress)
    plan = plan_sessions(world)
    totals = InteractionTotals(world)
    t1 = time.perf_counter()
    n_imp = clicks = carts = buys = 0
    for batch in simulate_sessions(world, plan, progress):
        totals.add(batch)
        n_imp += len(batch)
        clicks += int(batch.clicked.sum())
        carts += int(batch.added_to_cart.sum())
        buys += int(batch.purchased.sum())
    sim_s = time.perf_counter() - t1
    tables = {
        CATALOG: world.catalog.frame(),
        QUERIES: world.queries.frame(first_seen(plan, len(world.queries))),
        **totals.tables(world),
    }
    total_s = time.perf_counter() - t0
    logger.info("sessions: %d sessions, %d impressions in %.1fs (%.0f impressions/s)",
                cfg.n_sessions, n_imp, sim_s, n_imp / max(sim_s, 1e-9))
    logger.info("funnel: CTR %.3f, add-to-cart/click %.3f, purchase/add-to-cart %.3f",
                clicks / max(n_imp, 1), carts / max(clicks, 1), buys / max(carts, 1))
    logger.info("world generated in %.1fs: %s", total_s, {k: len(v) for k, v in tables.items()})
    return tables
