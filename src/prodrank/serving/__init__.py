"""Packaging and serving: the BentoML model store and champion registry (registry.py), the
scoring core (engine.py), request models (schemas.py), the request guard (guard.py), the
request/feedback log (request_log.py), the ``package`` stage (packaging.py) and the BentoML
service (service.py; importing it resolves a packaged model, so import it only to serve)."""
