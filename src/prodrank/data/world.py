"""The simulator's former address, kept only for :mod:`prodrank.monitoring.simulate` and its tests,
which still import it from here; the code lives in :mod:`prodrank.sim.world`. Remove this module
when they import :mod:`prodrank.sim`."""
from prodrank.sim.world import (
    InteractionTotals,
    build_world,
    generate_world,
    plan_sessions,
    simulate_sessions,
)

__all__ = ["InteractionTotals", "build_world", "generate_world", "plan_sessions", "simulate_sessions"]
