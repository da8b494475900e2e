"""The vocabulary's former address, kept only for the monitoring tests, which still read
``DEPARTMENTS`` from here; the word lists live in :mod:`prodrank.sim.vocabulary`. Remove this
module when they import :mod:`prodrank.sim`."""
from prodrank.sim.vocabulary import DEPARTMENTS

__all__ = ["DEPARTMENTS"]
