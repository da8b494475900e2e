"""The canonical tables every source is turned into, and the documented input formats.

Every data source (the synthetic world, a judgments file, an interactions log, the real
Home Depot / Best Buy adapters) is normalised into the same Parquet tables in
``data/raw/``: four, and a fifth, ``positions``, from the sources that log where each
impression was shown. Everything downstream (validation, split, pretraining, training,
evaluation) reads only these tables, so a new source only needs an adapter.

=================  ============================================================
table              columns (``?`` = may be absent / null)
=================  ============================================================
catalog            product_id:str, title:str, description?:str, brand?:str,
                   category?:str, attributes?:str ("key: value; key: value"),
                   price?:float, rating?:float, popularity?:float
queries            query_id:str, query:str, frequency:str (head|torso|tail),
                   gap_synonym:bool, gap_abbreviation:bool, gap_misspelling:bool,
                   gap_descriptive:bool, timestamp?:datetime (first seen)
interactions       query_id:str, product_id:str, impressions:int>=1,
                   position:float>=1 (mean shown position), clicks:int,
                   add_to_carts:int, purchases:int, grade?:float,
                   timestamp?:datetime (first impression)
relevance          query_id:str, product_id:str, relevance:int 0..3,
(evaluation only)  expected_clicks?:float, expected_add_to_carts?:float,
                   expected_purchases?:float (0..1, funnel order)
                   -- the synthetic world's ground truth; absent for real logs.
                   ``expected_<label>`` is the chance that one *examined*
                   impression ends in that event: the per-task gain with the
                   logging ranker's position bias removed.
positions          query_id:str, product_id:str, position:int>=1,
(optional)         impressions:int>=1, clicks:int, add_to_carts:int,
                   purchases:int
                   -- one row per (query, product, position) shown; only
                   from sources that log the positions really shown (the
                   synthetic world, an interactions log). Judgments, Home
                   Depot and Best Buy have none (Best Buy's positions are
                   drawn at random), so they write no ``positions``.
=================  ============================================================

``interactions`` is aggregated to one row per (query, product) pair shown, because the
cross-encoder scores pairs: the task targets are rates over impressions
(``clicks / impressions`` ...), which is the maximum-likelihood target for a Bernoulli
event per impression, and ``impressions`` is the example weight. The funnel holds per
row: ``purchases <= add_to_carts <= clicks <= impressions``. Judgment sources have
``grade`` (the raw grade) and zero counts with ``impressions = 1``.

``positions`` keeps what the aggregation drops: ``interactions`` holds only a pair's mean
position, but estimating position bias needs the counts at each position a pair was shown
(a pair shown 10 times at 1 and 10 times at 9 is not one shown 20 times at 5). Summed over
``position`` it gives exactly the pair's ``interactions`` counts, and
``sum(position * impressions) / impressions`` its mean position. The same funnel holds per row.
"""
from __future__ import annotations

CATALOG = "catalog"
QUERIES = "queries"
INTERACTIONS = "interactions"
RELEVANCE = "relevance"
POSITIONS = "positions"
TABLES = (CATALOG, QUERIES, INTERACTIONS, RELEVANCE, POSITIONS)

CATALOG_TEXT_FIELDS = ("title", "brand", "category", "attributes", "description")
PRODUCT_FEATURES = ("price", "rating")  # numeric columns a ranker may read; a ranking request carries them too
CATALOG_COLUMNS = ("product_id", *CATALOG_TEXT_FIELDS, *PRODUCT_FEATURES, "popularity")
GAP_TAGS = ("synonym", "abbreviation", "misspelling", "descriptive")
QUERY_COLUMNS = ("query_id", "query", "frequency", *(f"gap_{t}" for t in GAP_TAGS))
FREQUENCY_BUCKETS = ("head", "torso", "tail")
COUNT_COLUMNS = ("impressions", "clicks", "add_to_carts", "purchases")
INTERACTION_COLUMNS = ("query_id", "product_id", "position", *COUNT_COLUMNS)
RELEVANCE_COLUMNS = ("query_id", "product_id", "relevance")
POSITION_COLUMNS = ("query_id", "product_id", "position", *COUNT_COLUMNS)
EXPECTED_PREFIX = "expected_"  # relevance.expected_<task label>: unbiased per-task truth
SPLITS = ("train", "valid", "test")
