"""Throughput of the simulated store (prodrank.sim.world.generate_world).

Runs a small baseline and the ~1M-impression target (default 20k-product catalogue,
50k sessions x 20 results) in the same process, so the figures are comparable, and
prints wall time and impressions/s side by side. ``--catalogue-1m`` adds a run with a
1M-product catalogue to show that catalogue cost is linear.

    PYTHONPATH=src python benchmarks/bench_generate.py [--catalogue-1m] [--seed 13]
"""
from __future__ import annotations

import argparse
import logging
import resource
import time

from prodrank.config import WorldConfig
from prodrank.data.schema import CATALOG, INTERACTIONS
from prodrank.sim.world import generate_world


def run(name: str, cfg: WorldConfig, seed: int) -> dict:
    t0 = time.perf_counter()
    tables = generate_world(cfg, seed, progress=False)
    wall = time.perf_counter() - t0
    impressions = int(tables[INTERACTIONS]["impressions"].sum())
    return {
        "run": name,
        "products": len(tables[CATALOG]),
        "sessions": cfg.n_sessions,
        "impressions": impressions,
        "pairs": len(tables[INTERACTIONS]),
        "wall_s": wall,
        "impressions_per_s": impressions / wall,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--catalogue-1m", action="store_true", help="also run a 1M-product catalogue")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    runs = [
        ("baseline (100k imp.)", WorldConfig(n_sessions=5_000)),
        ("target (1M imp.)", WorldConfig(n_sessions=50_000, list_size=20)),
    ]
    if args.catalogue_1m:
        runs.append(("1M products, 1M imp.", WorldConfig(n_products=1_000_000, n_sessions=50_000)))
    generate_world(WorldConfig(n_products=500, n_queries=50, n_sessions=100), args.seed, progress=False)  # warm-up
    rows = [run(name, cfg, args.seed) for name, cfg in runs]

    header = f"{'run':<22} {'products':>9} {'sessions':>9} {'impressions':>12} {'pairs':>8} {'wall s':>7} {'impressions/s':>14} {'peak MB':>8}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['run']:<22} {r['products']:>9,} {r['sessions']:>9,} {r['impressions']:>12,} {r['pairs']:>8,} "
              f"{r['wall_s']:>7.2f} {r['impressions_per_s']:>14,.0f} {r['peak_rss_mb']:>8,.0f}")


if __name__ == "__main__":
    main()
