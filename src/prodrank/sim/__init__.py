"""The simulated store (the project's embedded default data set): :mod:`~prodrank.sim.world` builds
the catalogue, queries and logged sessions; :mod:`~prodrank.sim.vocabulary` holds its word lists,
with the product types in ``vocabulary.json``. It writes the canonical tables of
:mod:`prodrank.data.schema` and is otherwise independent of the rest of the library."""
