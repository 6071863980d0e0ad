"""Prediction functions through a real server and real psycopg clients:
compiled predictions equal the library's, NULLs and unseen categories, 8
concurrent clients, cache invalidation on DROP MODEL and on replace,
fallback when compilation fails, a model compiled once across restarts, a
model compiled as soon as CREATE MODEL finishes, and the cache's bound."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import psycopg
import pyarrow as pa
import pytest

from bench.byom import install_model
from catalog.artifact import ModelArtifact
from inference import compiled
from inference.cache import ModelCache
from inference.evaluators import LibraryEvaluator
from inference.functions import decision_probabilities
from server.engine import Engine
from server.listener import Server
from server.settings import Settings
from tests.conftest import RunningServer, wait_for_state
from tests.test_inference_evaluators import DATA, train_artifact

# pylignum compiles with the system C compiler; without one the interpreter serves.
pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc)")

CHURN_CSV = DATA / "wa_churn.csv"
CREATE_CHURN = (f"CREATE TABLE churn AS SELECT row_number() OVER () AS id, * EXCLUDE (split) "
                f"FROM read_csv('{CHURN_CSV}') WHERE split = 'test'")


@dataclass
class Served:
    running: RunningServer
    server: Server

    @property
    def engine(self) -> Engine:
        assert self.server.engine is not None
        return self.server.engine


def start(folder: Path, samples: bool = False) -> Served:
    settings = Settings(host="127.0.0.1", port=0, database=str(folder / "db.duckdb"),
                        data_dir=str(folder / "data"), samples=samples, file_dir=str(DATA),
                        training_workers=1, training_threads=1)
    srv = Server(settings)
    srv.start()
    return Served(RunningServer("127.0.0.1", srv.port, folder / "data"), srv)


@pytest.fixture(scope="module")
def churn_models() -> dict[str, ModelArtifact]:
    return {"lgbm": train_artifact("wa_churn", "lightgbm")[0],
            "xgb": train_artifact("wa_churn", "xgboost")[0]}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory,
           churn_models: dict[str, ModelArtifact]) -> Iterator[Served]:
    s = start(tmp_path_factory.mktemp("inference"))
    for key, artifact in churn_models.items():
        install_model(s.engine, f"churn_{key}", f"churn_{key}", artifact)
        s.engine.cache.prepare(f"churn_{key}", timeout=120)
    with s.running.connect() as c:
        c.execute(CREATE_CHURN)
    try:
        yield s
    finally:
        s.server.stop()


def as_obj(value: object) -> dict[str, list[float]]:
    """A STRUCT value as psycopg returns it (JSON text for the server's STRUCT columns)."""
    return json.loads(value) if isinstance(value, str) else value  # type: ignore[return-value]


def feature_list(artifact: ModelArtifact) -> str:
    return ", ".join(f'"{f.name}"' for f in artifact.features)


def oracle(artifact: ModelArtifact) -> tuple[list[object], np.ndarray]:
    """Labels and (decision-mapped) probabilities of the library on the same rows,
    read directly by DuckDB."""
    con = duckdb.connect(":memory:")
    con.execute(CREATE_CHURN)
    table = con.sql(f"SELECT {feature_list(artifact)} FROM churn ORDER BY id").to_arrow_table()
    con.close()
    library = LibraryEvaluator(artifact)
    args = [c.combine_chunks() for c in table.columns]
    proba = decision_probabilities(artifact, library.predict_proba(args))
    return artifact.decode(library.predict(args)), proba


@pytest.mark.parametrize("key", ["lgbm", "xgb"])
def test_sql_predictions_equal_library(served: Served, churn_models: dict[str, ModelArtifact],
                                       key: str) -> None:
    artifact = churn_models[key]
    fn = f"churn_{key}"
    assert served.engine.cache.get(fn).evaluator.kind == "lignum-compiled"
    features = feature_list(artifact)
    with served.running.connect() as c:
        rows = c.execute(f"SELECT {fn}({features}), {fn}_probabilities({features}) "
                         "FROM churn ORDER BY id").fetchall()
    labels, proba = oracle(artifact)
    assert [r[0] for r in rows] == labels
    for (label, probs), p in zip(rows, proba, strict=True):
        assert as_obj(probs)["labels"][0] == label
        assert sorted(as_obj(probs)["probabilities"]) == sorted(p.tolist())


def test_nulls_and_unseen_categories_never_raise(served: Served,
                                                 churn_models: dict[str, ModelArtifact]) -> None:
    artifact = churn_models["lgbm"]
    values: list[object] = []
    for f in artifact.features:
        values.append("no such category" if f.type == "VARCHAR" else None)
    args = [pa.array([v], type=pa.string() if f.type == "VARCHAR" else pa.float64())
            for v, f in zip(values, artifact.features, strict=True)]
    nulls = [pa.nulls(1, a.type) for a in args]
    literal_nulls = ", ".join(["NULL"] * len(values))
    casts = ", ".join(f"%s::{f.type}" for f in artifact.features)
    with served.running.connect() as c:
        for key in ("lgbm", "xgb"):
            model = churn_models[key]
            fn = f"churn_{key}"
            unseen = c.execute(f"SELECT {fn}({casts})", values).fetchone()
            all_null = c.execute(f"SELECT {fn}({literal_nulls})").fetchone()
            library = LibraryEvaluator(model)
            assert unseen == (model.decode(library.predict(args))[0],)
            assert all_null == (model.decode(library.predict(nulls))[0],)


def test_eight_clients_get_the_same_answers(served: Served,
                                            churn_models: dict[str, ModelArtifact]) -> None:
    features = feature_list(churn_models["lgbm"])
    query = (f"SELECT sum(churn_lgbm({features})::INT), sum(churn_xgb({features})::INT), "
             f"sum(round(churn_lgbm_probabilities({features}).probabilities[1] * 1e12)::BIGINT), "
             f"sum(round(churn_xgb_probabilities({features}).probabilities[1] * 1e12)::BIGINT) "
             "FROM (SELECT * FROM churn, range(20))")
    with served.running.connect() as c:
        expected = c.execute(query).fetchone()
    results: list[object] = []
    errors: list[psycopg.Error] = []

    def score() -> None:
        try:
            with served.running.connect() as c:
                for _ in range(3):
                    results.append(c.execute(query).fetchone())
        except psycopg.Error as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=score) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors
    assert len(results) == 24 and set(results) == {expected}


def test_drop_model_invalidates_and_replace_serves_the_new_model(
        served: Served, churn_models: dict[str, ModelArtifact]) -> None:
    engine = served.engine
    first, second = churn_models["lgbm"], churn_models["xgb"]
    features = feature_list(first)
    query = f"SELECT churn_tmp({features}) FROM churn ORDER BY id"
    record = install_model(engine, "churn_tmp", "churn_tmp", first)
    folder = engine.files(record).folder
    with served.running.connect() as c:
        assert [r[0] for r in c.execute(query).fetchall()] == oracle(first)[0]
        assert "churn_tmp" in engine.cache.loaded_functions()
        engine.cache.prepare("churn_tmp", timeout=120)
        assert compiled.CompiledPaths.beside(str(folder / "artifact.json")).manifest.exists()
        c.execute("DROP MODEL churn_tmp")
        assert "churn_tmp" not in engine.cache.loaded_functions()
        assert not folder.exists()
        with pytest.raises(psycopg.errors.UndefinedFunction):
            c.execute(query)
        # The same model and function names, another model behind them.
        install_model(engine, "churn_tmp", "churn_tmp", second)
        assert [r[0] for r in c.execute(query).fetchall()] == oracle(second)[0]
        proba = [as_obj(r[0])["probabilities"] for r in c.execute(
            f"SELECT churn_tmp_probabilities({features}) FROM churn ORDER BY id").fetchall()]
        assert [sorted(p) for p in proba] == [sorted(p) for p in oracle(second)[1].tolist()]
        c.execute("DROP MODEL churn_tmp")


def test_fallback_when_compilation_fails(served: Served,
                                         churn_models: dict[str, ModelArtifact]) -> None:
    engine = served.engine
    artifact = churn_models["xgb"]
    engine.cache.compiler = "/nonexistent/cc"
    try:
        record = install_model(engine, "churn_nocc", "churn_nocc", artifact)
        with served.running.connect() as c:
            rows = c.execute(f"SELECT churn_nocc({feature_list(artifact)}) FROM churn "
                             "ORDER BY id").fetchall()
        assert [r[0] for r in rows] == oracle(artifact)[0]
        loaded = engine.cache.prepare("churn_nocc", timeout=120)
        assert loaded.compile_error is not None
        assert loaded.evaluator.kind == "lignum-interpreter"
        path = str(engine.files(record).folder / "artifact.json")
        assert not compiled.CompiledPaths.beside(path).manifest.exists()
    finally:
        engine.cache.compiler = "auto"
    with served.running.connect() as c:
        c.execute("DROP MODEL churn_nocc")


def test_compiled_once_across_restarts(tmp_path: Path,
                                       churn_models: dict[str, ModelArtifact]) -> None:
    artifact = churn_models["lgbm"]
    first = start(tmp_path)
    try:
        record = install_model(first.engine, "m", "f", artifact)
        assert first.engine.cache.prepare("f", timeout=120).evaluator.kind == "lignum-compiled"
        with first.running.connect() as c:
            c.execute(CREATE_CHURN)
            before = c.execute(f"SELECT f({feature_list(artifact)}) FROM churn "
                               "ORDER BY id").fetchall()
    finally:
        first.server.stop()
    library = compiled.CompiledPaths.beside(
        str(first.engine.files(record).folder / "artifact.json")).library
    stamp = library.stat().st_mtime_ns
    second = start(tmp_path)
    try:
        with second.running.connect() as c:
            after = c.execute(f"SELECT f({feature_list(artifact)}) FROM churn "
                              "ORDER BY id").fetchall()
        loaded = second.engine.cache.get("f")
        assert loaded.compile_done.is_set()
        assert loaded.evaluator.kind == "lignum-compiled"
    finally:
        second.server.stop()
    assert after == before
    assert library.stat().st_mtime_ns == stamp


def test_create_model_is_compiled_when_ready(server: RunningServer) -> None:
    """A model trained by CREATE MODEL is compiled in the background as soon as it is
    READY (when its learner is LightGBM or XGBoost), before any query asks for it."""
    with server.connect(prepare_threshold=None) as c:
        c.execute("CREATE MODEL hpc_compiled FROM (SELECT * EXCLUDE (split) FROM hpc "
                  "WHERE split = 'train') TARGET class FUNCTION predict_hpc_compiled "
                  "SETTINGS (MAX_RUNTIME 5)")
        assert wait_for_state(c, "hpc_compiled") == "READY"
        show: dict[str, str] = dict(c.execute("SHOW MODEL hpc_compiled").fetchall())
        learner = show["Model Type"]
        folder = next(server.data_dir.glob("models/*/hpc_compiled/v1-*"))
        manifest = folder / "artifact.json.lignum.json"
        if "lgbm" in learner or "xgb" in learner:
            deadline = time.monotonic() + 60
            while not manifest.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert manifest.exists(), learner
        n = c.execute("SELECT count(predict_hpc_compiled(protocol, compounds, input_fields, "
                      "iterations, num_pending, hour, day)) FROM hpc").fetchone()
        assert n == (4331,)
        c.execute("DROP MODEL hpc_compiled")


def test_cache_is_bounded_least_recently_used(tmp_path: Path,
                                              churn_models: dict[str, ModelArtifact]) -> None:
    from bench.byom import ARTIFACT_FILE
    from catalog.artifact import write_artifact
    from catalog.spec import ModelState
    from inference.cache import CacheEntry

    cache = ModelCache(max_bytes=1, compile_trees=False)
    for name in ("a", "b", "c"):
        folder = tmp_path / name
        folder.mkdir()
        path = str(folder / ARTIFACT_FILE)
        sha = write_artifact(churn_models["lgbm"], path)
        cache.set_entry(name, CacheEntry(f"public.{name}", ModelState.READY, None, path, sha))
        cache.get(name)
        assert cache.loaded_functions() == [name]  # one model over the bound: the newest
    big = ModelCache(max_bytes=1 << 30, compile_trees=False)
    for name in ("a", "b", "c"):
        path = str(tmp_path / name / ARTIFACT_FILE)
        sha = write_artifact(churn_models["lgbm"], path)
        big.set_entry(name, CacheEntry(f"public.{name}", ModelState.READY, None, path, sha))
        big.get(name)
    big.get("a")
    assert big.loaded_functions() == ["b", "c", "a"]
    assert big.loaded_bytes() > 0
