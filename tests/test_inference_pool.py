"""The scoring pool (inference.procpool) through a real server and psycopg:
pooled predictions equal the in-process library's on real data (examples/data)
with NULLs and unseen categories, a worker killed with SIGKILL mid-query fails
that query with 58000 and is replaced, DROP MODEL makes the workers forget the
model, point queries stay in process, the per-kind defaults, and the workers
exit when the server is killed."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import psycopg
import pyarrow as pa
import pytest

from bench.byom import install_model
from bench.inference import train_sklearn
from catalog.artifact import ModelArtifact
from inference.evaluators import LibraryEvaluator
from inference.functions import decision_probabilities
from inference.procpool import MIN_POOL_ROWS, POOL_BY_DEFAULT, ScoringPool, wants_pool
from server.listener import Server
from server.settings import Settings
from tests.conftest import RunningServer, start_server_process, wait_for_state
from tests.test_inference_evaluators import DATA, load_split

CHURN = DATA / "wa_churn.csv"
DIAMONDS = DATA / "diamonds.csv"
# The churn test rows, three times over (three-plus vectors): each copy has other rows
# NULLed (every 7th + rep) and, in VARCHAR columns, other values never seen at training.
CREATE_CHURN = f"""
CREATE TABLE churn AS
SELECT rep * 100000 + rid AS id, rep, b.* EXCLUDE (rid) FROM
  (SELECT row_number() OVER () AS rid, * EXCLUDE (split) FROM read_csv('{CHURN}')
   WHERE split = 'test') b, range(3) r(rep)"""
CREATE_DIAMONDS = (f"CREATE TABLE diamonds AS SELECT row_number() OVER () AS id, "
                   f"* EXCLUDE (split) FROM read_csv('{DIAMONDS}') WHERE split = 'test'")


def messy(artifact: ModelArtifact) -> str:
    """The churn features with NULLs and unseen categories, as SQL expressions."""
    out = []
    for i, f in enumerate(artifact.features):
        col = f'"{f.name}"'
        if f.type == "VARCHAR":
            col = f"CASE WHEN (id + {i}) % 11 = 0 THEN 'never seen at training' ELSE {col} END"
        out.append(f"CASE WHEN (id + rep) % 7 = {i % 7} THEN NULL ELSE {col} END")
    return ", ".join(out)


@pytest.fixture(scope="module")
def models() -> dict[str, ModelArtifact]:
    features, target, train, _ = load_split("wa_churn")
    out = {kind: train_sklearn(kind, train, features, target)
           for kind in ("mlp", "linear_learner", "rf")}
    d_features, d_target, d_train, _ = load_split("diamonds")
    out["diamonds_linear"] = train_sklearn("linear_learner", d_train, d_features, d_target)
    return out


class Pooled:
    def __init__(self, folder: Path, models: dict[str, ModelArtifact]):
        settings = Settings(host="127.0.0.1", port=0, database=str(folder / "db.duckdb"),
                            data_dir=str(folder / "data"), samples=False,
                            file_dir=str(DATA), training_workers=1,
                            training_threads=1, duckdb_threads=2, scoring_workers=2,
                            scoring_pool="on")
        self.server = Server(settings)
        self.server.start()
        self.running = RunningServer("127.0.0.1", self.server.port, folder / "data")
        assert self.server.engine is not None
        self.engine = self.server.engine
        for name, artifact in models.items():
            install_model(self.engine, f"m_{name}", f"f_{name}", artifact)
        with self.running.connect() as c:
            c.execute(CREATE_CHURN)
            c.execute(CREATE_DIAMONDS)

    @property
    def pool(self) -> ScoringPool:
        pool = self.engine.cache.pool
        assert pool is not None
        return pool


@pytest.fixture(scope="module")
def pooled(tmp_path_factory: pytest.TempPathFactory,
           models: dict[str, ModelArtifact]) -> Iterator[Pooled]:
    p = Pooled(tmp_path_factory.mktemp("pool"), models)
    try:
        yield p
    finally:
        p.server.stop()


def oracle(artifact: ModelArtifact, query: str) -> tuple[list[object], np.ndarray | None]:
    """The in-process library's labels (or values) and decision probabilities on the rows
    of ``query``, read directly by DuckDB."""
    con = duckdb.connect(":memory:")
    con.execute(CREATE_CHURN)
    con.execute(CREATE_DIAMONDS)
    table = con.sql(query).to_arrow_table()
    con.close()
    args = [c.combine_chunks() for c in table.columns]
    library = LibraryEvaluator(artifact)
    raw = library.predict(args)
    if not artifact.problem_type.is_classification:
        return raw.tolist(), None
    return artifact.decode(raw), decision_probabilities(artifact, library.predict_proba(args))


@pytest.mark.parametrize("kind", ["mlp", "linear_learner", "rf"])
def test_pool_equals_in_process_with_nulls_and_unseen(pooled: Pooled,
                                                      models: dict[str, ModelArtifact],
                                                      kind: str) -> None:
    artifact = models[kind]
    fn = f"f_{kind}"
    args = messy(artifact)
    with pooled.running.connect() as c:
        rows = c.execute(f"SELECT {fn}({args}), {fn}_probabilities({args}) "
                         "FROM churn ORDER BY id").fetchall()
    assert pooled.engine.cache.get(fn).evaluator.kind == "library-pool"
    labels, proba = oracle(artifact, f"SELECT {args} FROM churn ORDER BY id")
    assert proba is not None and len(rows) == len(labels) > 3 * 2048 // 2
    assert [r[0] for r in rows] == labels
    got = np.array([json.loads(r[1])["probabilities"] if isinstance(r[1], str)
                    else r[1]["probabilities"] for r in rows])
    np.testing.assert_allclose(got, -np.sort(-proba, axis=1), rtol=1e-12, atol=1e-15)
    # The workers scored it: each holds the model now.
    key = pooled.engine.cache.get(fn).evaluator.key  # type: ignore[attr-defined]
    assert any(key in held for held in pooled.pool.loaded())


def test_pool_regression_and_all_null_vectors(pooled: Pooled,
                                              models: dict[str, ModelArtifact]) -> None:
    artifact = models["diamonds_linear"]
    cols = ", ".join(f'"{f.name}"' for f in artifact.features)
    nulls = ", ".join(f"NULL::{f.type}" for f in artifact.features)
    with pooled.running.connect() as c:
        values = [r[0] for r in c.execute(
            f"SELECT f_diamonds_linear({cols}) FROM diamonds ORDER BY id").fetchall()]
        all_null = c.execute(f"SELECT DISTINCT f_diamonds_linear({nulls}) "
                             f"FROM range({MIN_POOL_ROWS * 2})").fetchall()
    expected, _ = oracle(artifact, f"SELECT {cols} FROM diamonds ORDER BY id")
    assert artifact.target.type == "BIGINT"  # price: values rounded as the function does
    assert values == np.rint(np.asarray(expected, dtype=np.float64)).astype(np.int64).tolist()
    one_null = [pa.nulls(1, pa.float64() if f.type != "VARCHAR" else pa.string())
                for f in artifact.features]
    assert all_null == [(round(LibraryEvaluator(artifact).predict(one_null)[0]),)]


def test_killed_worker_fails_the_query_with_58000_then_is_replaced(
        pooled: Pooled, models: dict[str, ModelArtifact]) -> None:
    artifact = models["mlp"]
    cols = ", ".join(f'"{f.name}"' for f in artifact.features)
    big = f"SELECT sum(f_mlp({cols})::INT) FROM churn, range(60)"
    small = f"SELECT sum(f_mlp({cols})::INT) FROM churn"
    with pooled.running.connect() as c:
        before = c.execute(small).fetchone()
    killed: set[int] = set()
    outcome: dict[str, BaseException | object] = {}

    def run() -> None:
        with pooled.running.connect() as c:
            try:
                outcome["rows"] = c.execute(big).fetchall()
            except psycopg.Error as exc:
                outcome["error"] = exc

    # The table is one DuckDB task: one worker scores at a time. Each worker spends most
    # of the query inside a request; should the kill land between two requests, the dead
    # worker is replaced silently (the query succeeds) and we try again.
    for _ in range(3):
        pids = pooled.pool.pids()
        assert len(pids) == 2
        outcome.clear()
        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + 30
        while pooled.pool.busy_workers() < 1 and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(0.05)
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        killed.update(pids)
        thread.join(timeout=120)
        if "error" in outcome:
            break
    error = outcome.get("error")
    assert isinstance(error, psycopg.Error), outcome
    assert error.sqlstate == "58000"
    assert "scoring worker process died (killed by signal 9)" in str(error)
    with pooled.running.connect() as c:
        assert c.execute(small).fetchone() == before
    fresh = pooled.pool.pids()
    assert len(fresh) == 2 and not set(fresh) & killed


def test_drop_model_frees_the_workers(pooled: Pooled, models: dict[str, ModelArtifact]) -> None:
    artifact = models["linear_learner"]
    install_model(pooled.engine, "m_dropme", "f_dropme", artifact)
    cols = ", ".join(f'"{f.name}"' for f in artifact.features)
    with pooled.running.connect() as c:
        # two DuckDB threads (duckdb_threads=2): the locked configuration takes no SET
        c.execute(f"SELECT sum(f_dropme({cols})::INT) FROM churn, range(4)").fetchall()
        key = pooled.engine.cache.get("f_dropme").evaluator.key  # type: ignore[attr-defined]
        # The idle workers are asked: the one(s) that scored it hold it.
        assert any(key in held for held in pooled.pool.loaded())
        c.execute("DROP MODEL m_dropme")
        assert all(key not in held for held in pooled.pool.loaded())
        other = pooled.engine.cache.get("f_linear_learner").evaluator.key  # type: ignore[attr-defined]
        c.execute(f"SELECT sum(f_linear_learner({cols})::INT) FROM churn").fetchall()
        assert any(other in held for held in pooled.pool.loaded())
        with pytest.raises(psycopg.Error) as info:
            c.execute(f"SELECT f_dropme({cols}) FROM churn")
        assert info.value.sqlstate == "42883"


def test_point_queries_stay_in_process(pooled: Pooled,
                                       models: dict[str, ModelArtifact]) -> None:
    artifact = models["linear_learner"]
    install_model(pooled.engine, "m_point", "f_point", artifact)
    cols = ", ".join(f'"{f.name}"' for f in artifact.features)
    with pooled.running.connect() as c:
        one = c.execute(f"SELECT f_point({cols}) FROM churn WHERE id = 1").fetchall()
        key = pooled.engine.cache.get("f_point").evaluator.key  # type: ignore[attr-defined]
        assert all(key not in held for held in pooled.pool.loaded())
        many = c.execute(f"SELECT f_point({cols}) FROM churn WHERE id <= {MIN_POOL_ROWS} "
                         "ORDER BY id").fetchall()
        assert any(key in held for held in pooled.pool.loaded())
        c.execute("DROP MODEL m_point")
    labels, _ = oracle(artifact, f"SELECT {cols} FROM churn WHERE id <= {MIN_POOL_ROWS} "
                                 "ORDER BY id")
    assert one == [(labels[0],)] and many == [(v,) for v in labels]


def test_per_kind_defaults_and_no_pool_without_workers(
        tmp_path: Path, models: dict[str, ModelArtifact]) -> None:
    """scoring_pool auto: the table decides; --scoring-workers 0: no pool at all."""
    for kind, artifact in models.items():
        base = "linear_learner" if kind == "diamonds_linear" else kind
        assert wants_pool(artifact, "auto") is POOL_BY_DEFAULT[base]
        assert wants_pool(artifact, "off") is False
        assert wants_pool(artifact, "on") is True
    settings = Settings(host="127.0.0.1", port=0, database=str(tmp_path / "db.duckdb"),
                        data_dir=str(tmp_path / "data"), samples=False,
                        file_dir=str(DATA), training_workers=1,
                        training_threads=1, scoring_workers=0)
    srv = Server(settings)
    srv.start()
    try:
        assert srv.engine is not None
        install_model(srv.engine, "m_mlp", "f_mlp", models["mlp"])
        running = RunningServer("127.0.0.1", srv.port, tmp_path / "data")
        cols = ", ".join(f'"{f.name}"' for f in models["mlp"].features)
        with running.connect() as c:
            c.execute(CREATE_CHURN)
            c.execute(f"SELECT f_mlp({cols}) FROM churn WHERE id = 1").fetchall()
        # --scoring-workers 0: the library in process, no pool started.
        assert srv.engine.cache.get("f_mlp").evaluator.kind == "library"
        assert srv.engine.cache.pool is None
    finally:
        srv.stop()


def _scoring_workers(server_pid: int) -> list[int]:
    """The server's spawned children (resource tracker aside): with no training
    running, the scoring workers."""
    out = []
    for task in Path(f"/proc/{server_pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except FileNotFoundError:
            continue
        for child in children:
            try:
                cmd = Path(f"/proc/{child}/cmdline").read_bytes()
            except FileNotFoundError:
                continue
            if b"spawn_main" in cmd:
                out.append(int(child))
    return out


def test_workers_exit_when_the_server_is_killed(tmp_path: Path) -> None:
    hpc = DATA / "hpc_data.csv"
    proc = start_server_process(tmp_path / "db.duckdb", tmp_path / "data", "--no-samples",
                                "--file-dir", str(DATA),
                                "--scoring-workers", "2", "--training-workers", "1")
    try:
        with psycopg.connect(proc.dsn(), autocommit=True) as c:
            c.execute(f"CREATE TABLE hpc AS SELECT * FROM read_csv('{hpc}')")
            c.execute("CREATE MODEL clusters FROM (SELECT compounds, input_fields, iterations, "
                      "num_pending, hour FROM hpc) FUNCTION cluster AUTO OFF MODEL_TYPE KMEANS "
                      "HYPERPARAMETERS DEFAULT EXCEPT (K '3') SETTINGS (S3_BUCKET 'b')")
            assert wait_for_state(c, "clusters", timeout=120) == "READY"
            counts = c.execute("SELECT count(DISTINCT cluster(compounds, input_fields, "
                               "iterations, num_pending, hour)) FROM hpc").fetchone()
            assert counts == (3,)
        deadline = time.monotonic() + 30
        workers = _scoring_workers(proc.process.pid)
        while len(workers) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
            workers = _scoring_workers(proc.process.pid)
        assert len(workers) >= 2, proc.lines
    finally:
        proc.process.kill()
        proc.process.wait()
    deadline = time.monotonic() + 15
    while any(Path(f"/proc/{w}/cmdline").exists() and Path(f"/proc/{w}/cmdline").read_bytes()
              for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [w for w in workers if Path(f"/proc/{w}/cmdline").exists()
                and Path(f"/proc/{w}/cmdline").read_bytes()]
