"""Models as data: specs, states, feature schemas, metrics and artifacts.

The catalog is stored in a reserved schema (``quackml``) of the same DuckDB
database as the user's tables. This package imports none of ``server``,
``automl`` or ``inference``; they all import it.
"""
