"""Developer tools run from the project root (``python -m tools.<name>``), kept out of the
``prodrank`` package because no user of the library imports them: the reliability suite
(``make reliability``) and the Prefect overhead measurement. Tests import their helpers."""
