"""Pure SQL text work on DuckDB's own parser: splitting, classification, grammars."""
