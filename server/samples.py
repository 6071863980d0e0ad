"""Sample tables loaded into a new database so a newcomer can train at once.

The CSV files ship in ``examples/data`` (see its README for sources and
licences). Each keeps its fixed ``split`` column (train/test).
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb

log = logging.getLogger("quackml.samples")

DATA = Path(__file__).resolve().parent.parent / "examples" / "data"
SAMPLES = {
    "customers": "wa_churn.csv",
    "credit": "credit_data.csv",
    "hpc": "hpc_data.csv",
    "diamonds": "diamonds.csv",
    "tourism": "tourism_monthly.csv",
}


def load_samples(con: duckdb.DuckDBPyConnection) -> list[str]:
    loaded = []
    cur = con.cursor()
    for table, filename in SAMPLES.items():
        path = DATA / filename
        if not path.exists():
            log.warning("sample file %s is missing; table %s not loaded", path, table)
            continue
        cur.execute(f"CREATE TABLE IF NOT EXISTS {table} AS "
                    "SELECT * FROM read_csv(?, header = true)", [str(path)])
        loaded.append(table)
    cur.close()
    if loaded:
        log.info("loaded sample tables: %s", ", ".join(loaded))
    return loaded
