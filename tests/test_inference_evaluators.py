"""Compiled evaluators give the library's predictions bit for bit, on the real
datasets in examples/data (read through DuckDB, scored in 2,048-row vectors as
the prediction functions are), with NULLs and unseen categories; a model is
compiled once and its compiled files are checksummed; compilation failures
fall back to the library."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import lightgbm as lgb
import numpy as np
import pyarrow as pa
import pytest
import xgboost as xgb

from catalog.artifact import ModelArtifact, write_artifact
from catalog.frames import estimator_input, fit_categories, to_frame
from catalog.spec import Column, ProblemType
from inference import compiled
from inference.cache import CacheEntry, ModelCache
from inference.errors import CompilationFailed
from inference.evaluators import LibraryEvaluator, TreeEvaluator, decide
from tests.conftest import REPO

DATA = REPO / "examples" / "data"
# pylignum compiles with the system C compiler; without one the interpreter serves.
needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc)")
VECTOR = 2048

# dataset file, target column, problem type
DATASETS = {
    "wa_churn": ("wa_churn.csv", "churn", ProblemType.BINARY),
    "credit_data": ("credit_data.csv", "Status", ProblemType.BINARY),
    "hpc_data": ("hpc_data.csv", "class", ProblemType.MULTICLASS),
    "diamonds": ("diamonds.csv", "price", ProblemType.REGRESSION),
}


def load_split(name: str) -> tuple[list[Column], Column, pa.Table, pa.Table]:
    file, target, _ = DATASETS[name]
    con = duckdb.connect(":memory:")
    con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv('{DATA / file}')")
    described = con.execute("DESCRIBE t").fetchall()
    columns = [Column(str(n), str(ty)) for n, ty, *_ in described if n != "split"]
    features = [c for c in columns if c.name != target]
    target_col = next(c for c in columns if c.name == target)
    names = ", ".join(f'"{c.name}"' for c in features)
    train = con.sql(f'SELECT {names}, "{target}" FROM t WHERE split = \'train\' '
                    "ORDER BY ALL").to_arrow_table()
    test = con.sql(f"SELECT {names} FROM t WHERE split = 'test'").to_arrow_table()
    con.close()
    return features, target_col, train, test


def train_artifact(name: str, library: str, trees: int = 40) -> tuple[ModelArtifact, pa.Table]:
    """A model trained with the library directly, packed as automl packs it."""
    _, _, problem = DATASETS[name]
    features, target, train, test = load_split(name)
    categories = fit_categories(train, features)
    frame = to_frame([train.column(f.name) for f in features], features, categories)
    y_values = train.column(target.name).to_pylist()
    labels: tuple[object, ...] = ()
    if problem.is_classification:
        labels = tuple(sorted(set(y_values)))
        y = np.array([labels.index(v) for v in y_values])
    else:
        y = np.asarray(y_values, dtype=np.float64)
    codes = library == "xgboost"
    model_input = estimator_input(frame, codes)
    estimator: object
    if library == "lightgbm":
        cls = lgb.LGBMClassifier if problem.is_classification else lgb.LGBMRegressor
        estimator = cls(n_estimators=trees, num_leaves=15, verbose=-1, n_jobs=1,
                        min_child_samples=5).fit(model_input, y)
    else:
        xcls = xgb.XGBClassifier if problem.is_classification else xgb.XGBRegressor
        estimator = xcls(n_estimators=trees, max_depth=5, n_jobs=1).fit(model_input, y)
    artifact = ModelArtifact(
        features=tuple(features), target=target, problem_type=problem, labels=labels,
        categories=categories, estimator=estimator, metric_name="none", metric_value=0.0,
        threshold=0.37 if problem is ProblemType.BINARY else None,
        positive_index=1, category_codes=codes, learner=library)
    return artifact, test


def with_nulls_and_unseen(table: pa.Table, seed: int = 1) -> list[pa.Array]:
    """The table's columns with 15% NULLs and, in string columns, 10% unseen values."""
    rng = np.random.default_rng(seed)
    out: list[pa.Array] = []
    for column in table.columns:
        array = column.combine_chunks()
        n = len(array)
        if pa.types.is_string(array.type):
            values = array.to_pylist()
            for i in np.flatnonzero(rng.random(n) < 0.1):
                values[i] = "never seen at training"
            array = pa.array(values, type=pa.string())
        mask = pa.array(rng.random(n) < 0.15)
        out.append(pa.compute.if_else(mask, pa.scalar(None, array.type), array))
    return out


def vectors(columns: list[pa.Array]) -> list[list[pa.Array]]:
    n = len(columns[0])
    return [[c.slice(i, VECTOR) for c in columns] for i in range(0, n, VECTOR)]


CASES = [(name, library) for name in DATASETS for library in ("lightgbm", "xgboost")]


@pytest.fixture(scope="module", params=CASES, ids=[f"{n}-{lib}" for n, lib in CASES])
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> tuple[ModelArtifact, pa.Table, str, str]:
    name, library = request.param
    artifact, test = train_artifact(name, library)
    folder = tmp_path_factory.mktemp(f"{name}-{library}")
    path = str(folder / "artifact.json")
    sha = write_artifact(artifact, path)
    return artifact, test, path, sha


def assert_same_as_library(artifact: ModelArtifact, evaluator: TreeEvaluator,
                           columns: list[pa.Array]) -> None:
    library = LibraryEvaluator(artifact)
    for args in vectors(columns):
        ours = evaluator.scores(args)
        theirs = library.scores(args)
        assert ours.dtype == theirs.dtype == np.float64
        np.testing.assert_array_equal(ours, theirs)
        frame = to_frame(args, artifact.features, artifact.categories)
        expected = artifact.predict_frame(frame)
        np.testing.assert_array_equal(decide(artifact, ours), expected)
        np.testing.assert_array_equal(evaluator.predict(args), expected)


@needs_cc
def test_compiled_matches_library_on_real_data(
        case: tuple[ModelArtifact, pa.Table, str, str]) -> None:
    artifact, test, path, sha = case
    evaluator = compiled.compile_and_store(artifact, path, sha)
    assert evaluator.kind == "lignum-compiled"
    assert_same_as_library(artifact, evaluator, [c.combine_chunks() for c in test.columns])
    assert_same_as_library(artifact, evaluator, with_nulls_and_unseen(test))
    # all-NULL vectors
    nulls = [pa.nulls(100, c.type) for c in test.columns]
    assert_same_as_library(artifact, evaluator, nulls)


def test_interpreter_matches_library(case: tuple[ModelArtifact, pa.Table, str, str]) -> None:
    artifact, test, _, _ = case
    evaluator = compiled.interpreter(artifact)
    assert evaluator is not None and evaluator.kind == "lignum-interpreter"
    assert_same_as_library(artifact, evaluator, with_nulls_and_unseen(test, seed=2))


@needs_cc
def test_compiled_once_then_loaded_from_checked_files(tmp_path: Path) -> None:
    artifact, test = train_artifact("wa_churn", "lightgbm", trees=10)
    path = str(tmp_path / "artifact.json")
    sha = write_artifact(artifact, path)
    assert compiled.load_cached(artifact, path, sha) is None
    compiled.compile_and_store(artifact, path, sha)
    paths = compiled.CompiledPaths.beside(path)
    manifest = json.loads(paths.manifest.read_text())
    assert manifest["artifact_sha256"] == sha
    stamp = paths.library.stat().st_mtime_ns
    loaded = compiled.load_cached(artifact, path, sha)
    assert loaded is not None and loaded.kind == "lignum-compiled"
    assert paths.library.stat().st_mtime_ns == stamp  # not compiled again
    assert_same_as_library(artifact, loaded, [c.combine_chunks() for c in test.columns])
    # Another artifact checksum: the files are not this model's.
    assert compiled.load_cached(artifact, path, "0" * 64) is None
    # A damaged library is never loaded. (Written as a new file: the loaded one is mapped.)
    data = bytearray(paths.library.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged = tmp_path / "damaged.so"
    damaged.write_bytes(bytes(data))
    damaged.replace(paths.library)
    assert compiled.load_cached(artifact, path, sha) is None


def test_compiler_failure_falls_back(tmp_path: Path) -> None:
    artifact, test = train_artifact("credit_data", "xgboost", trees=10)
    path = str(tmp_path / "artifact.json")
    sha = write_artifact(artifact, path)
    with pytest.raises(CompilationFailed):
        compiled.compile_and_store(artifact, path, sha, compiler="/nonexistent/cc")
    assert not compiled.CompiledPaths.beside(path).manifest.exists()
    cache = ModelCache(1 << 30, compiler="/nonexistent/cc")
    cache.set_entry("f", CacheEntry("public.m", _ready(), None, path, sha))
    model = cache.prepare("f", timeout=120)
    assert model.compile_error is not None
    assert model.evaluator.kind == "lignum-interpreter"
    columns = [c.combine_chunks() for c in test.columns]
    assert_same_as_library(artifact, model.evaluator, columns)  # type: ignore[arg-type]


def test_models_pylignum_cannot_take_use_the_library(tmp_path: Path) -> None:
    from sklearn.ensemble import RandomForestClassifier

    artifact, _ = train_artifact("credit_data", "xgboost", trees=5)
    frame = to_frame([c for c in load_split("credit_data")[2].columns[:-1]],
                     artifact.features, artifact.categories)
    y = np.arange(len(frame)) % 2
    artifact.estimator = RandomForestClassifier(n_estimators=5, random_state=0).fit(
        estimator_input(frame, True), y)
    path = str(tmp_path / "artifact.json")
    sha = write_artifact(artifact, path)
    cache = ModelCache(1 << 30)
    cache.set_entry("f", CacheEntry("public.rf", _ready(), None, path, sha))
    model = cache.prepare("f", timeout=60)
    assert model.evaluator.kind == "library"
    assert not compiled.CompiledPaths.beside(path).manifest.exists()


def _ready():  # type: ignore[no-untyped-def]
    from catalog.spec import ModelState
    return ModelState.READY


@pytest.mark.parametrize("library", ["lightgbm", "xgboost"])
@pytest.mark.parametrize(("threshold", "positive"), [(None, 1), (0.5, 1), (0.62, 0), (0.2, 1)])
def test_binary_decisions_match_predict_frame(library: str, threshold: float | None,
                                              positive: int) -> None:
    import dataclasses

    artifact, test = train_artifact("wa_churn", library, trees=20)
    artifact = dataclasses.replace(artifact, threshold=threshold, positive_index=positive)
    evaluator = compiled.interpreter(artifact)
    assert evaluator is not None
    assert_same_as_library(artifact, evaluator, with_nulls_and_unseen(test, seed=3))


@pytest.mark.parametrize("library", ["lightgbm", "xgboost"])
def test_every_feature_type_matches_library(library: str) -> None:
    """DECIMAL, FLOAT, INTEGER, BOOLEAN, DATE, TIMESTAMP and VARCHAR arguments, as DuckDB
    hands them to a vectorized UDF, give the library's predictions (with NULLs)."""
    con = duckdb.connect(":memory:")
    con.execute("""
        CREATE TABLE t AS SELECT
            (i % 997 / 7.0)::DECIMAL(10, 2) AS d, (i % 89 * 0.37)::FLOAT AS f,
            (i % 31)::INTEGER AS n, (i % 3 = 0) AS b,
            DATE '2020-01-01' + (i % 400)::INTEGER AS day,
            TIMESTAMP '2020-01-01' + to_seconds(i * 3607) AS ts,
            ['red', 'green', 'blue', NULL][i % 4 + 1] AS colour,
            CASE WHEN i % 11 = 0 THEN NULL ELSE (i % 5) END::DOUBLE AS maybe,
            ((i % 997) / 7.0 + (i % 31) + (i % 3 = 0)::INT * 5 + (i % 4) * 2 > 40) AS y
        FROM range(3000) r(i)""")
    described = con.execute("DESCRIBE t").fetchall()
    features = [Column(str(n), str(ty)) for n, ty, *_ in described if n != "y"]
    train = con.sql("SELECT * FROM t").to_arrow_table()
    con.close()
    categories = fit_categories(train, features)
    frame = to_frame([train.column(f.name) for f in features], features, categories)
    codes = library == "xgboost"
    y = np.asarray(train.column("y").to_pylist(), dtype=np.int64)
    model_input = estimator_input(frame, codes)
    estimator = (lgb.LGBMClassifier(n_estimators=30, num_leaves=15, verbose=-1, n_jobs=1)
                 if library == "lightgbm" else
                 xgb.XGBClassifier(n_estimators=30, max_depth=4, n_jobs=1)).fit(model_input, y)
    artifact = ModelArtifact(
        features=tuple(features), target=Column("y", "BOOLEAN"), problem_type=ProblemType.BINARY,
        labels=(False, True), categories=categories, estimator=estimator, metric_name="none",
        metric_value=0.0, category_codes=codes, learner=library)
    evaluator = compiled.interpreter(artifact)
    assert evaluator is not None
    columns = [c.combine_chunks() for c in train.columns[:-1]]
    assert_same_as_library(artifact, evaluator, columns)
    assert_same_as_library(artifact, evaluator, with_nulls_and_unseen(train.select(
        [f.name for f in features])))
