"""SQLAlchemy 2 (psycopg dialect) and pandas: reflection, read_sql, to_sql."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
import sqlalchemy as sa

from tests.conftest import RunningServer


@pytest.fixture
def engine(server: RunningServer) -> Iterator[sa.Engine]:
    eng = sa.create_engine(f"postgresql+psycopg://tester@{server.host}:{server.port}/quackml")
    yield eng
    eng.dispose()


def test_reflection(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE OR REPLACE TABLE sa_items (id INTEGER NOT NULL, "
                             "name VARCHAR, price DECIMAL(10,2), seen TIMESTAMPTZ, ok BOOLEAN)"))
    insp = sa.inspect(engine)
    assert "public" in insp.get_schema_names()
    assert {"customers", "sa_items"} <= set(insp.get_table_names())
    columns = {c["name"]: c for c in insp.get_columns("sa_items")}
    assert list(columns) == ["id", "name", "price", "seen", "ok"]
    assert isinstance(columns["id"]["type"], sa.Integer)
    assert not columns["id"]["nullable"]
    assert isinstance(columns["name"]["type"], sa.String)
    assert isinstance(columns["price"]["type"], sa.Numeric)
    assert (columns["price"]["type"].precision, columns["price"]["type"].scale) == (10, 2)
    assert isinstance(columns["seen"]["type"], sa.DateTime)
    assert columns["seen"]["type"].timezone
    assert isinstance(columns["ok"]["type"], sa.Boolean)


def test_pandas_round_trip(engine: sa.Engine) -> None:
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", None, "z"], "c": [1.5, None, -2.0]})
    frame.to_sql("sa_frame", engine, if_exists="replace", index=False)
    back = pd.read_sql("SELECT * FROM sa_frame ORDER BY a", engine)
    pd.testing.assert_frame_equal(back, frame)
    assert "sa_frame" in sa.inspect(engine).get_table_names()
    customers = pd.read_sql(sa.text("SELECT * FROM customers WHERE tenure > :t"), engine,
                            params={"t": 60})
    assert len(customers) > 0 and (customers["tenure"] > 60).all()
