"""The QuackML server: PostgreSQL wire protocol, sessions, statement routing,
the ML statement grammar, the DuckDB engine handle, errors, settings and CLI."""
