"""No code from data (issue 10, item 3): model artifacts are files no reader runs code from.

A trained model's artifact is a JSON manifest plus LightGBM text, XGBoost UBJSON or
skops files (catalog.artifact, catalog.formats). Shown here against a real server on
127.0.0.1:0 with psycopg over TCP:

- no file of a model version starts with a pickle header, and every artifact loads, and
  every model answers, with ``pickle`` made to raise;
- a skops file naming a type outside the reviewed list is refused (XX001), even when its
  checksum matches; QuackML refuses to write one too; an old pickle artifact is refused
  (55000) without being unpickled;
- changing any one file of an artifact, not only the manifest, makes the model's
  function fail with XX001, and restoring it makes the model answer again.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest
import skops.io as sio
from sklearn.cluster import KMeans
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from catalog.artifact import ModelArtifact, read_artifact, write_artifact
from catalog.errors import ArtifactCorrupt, ArtifactOutdated
from catalog.files import ARTIFACT_FILE
from catalog.spec import Column, ProblemType
from server.listener import Server
from server.settings import Settings

ADMIN, ADMIN_PW = "admin", "adm1n-pw"

TABLE = ("CREATE TABLE pts AS SELECT (i % 17)::DOUBLE AS a, ((i * 7) % 13)::DOUBLE AS b, "
         "['x', 'y', 'z'][i % 3 + 1] AS c, (i % 17) + ((i * 7) % 13) > 14 AS y "
         "FROM range(600) t(i)")
SETTINGS = "SETTINGS (S3_BUCKET 'unused', MAX_RUNTIME 5)"
MODELS = {
    # name: (CREATE MODEL ..., a call of its function)
    "art_auto": ("CREATE MODEL art_auto FROM (SELECT a, b, c, y FROM pts) TARGET y "
                 f"FUNCTION art_auto_f IAM_ROLE default {SETTINGS}",
                 "SELECT art_auto_f(3.0, 4.0, 'x')"),
    "art_pre": ("CREATE MODEL art_pre FROM (SELECT a, b, c, y FROM pts) TARGET y "
                "FUNCTION art_pre_f IAM_ROLE default PREPROCESSORS '["
                '{"ColumnSet": ["a", "b"], "Transformers": ["Imputer", "StandardScaler"]}, '
                '{"ColumnSet": ["c"], "Transformers": ["OneHotEncoder"]}]\' '
                f"{SETTINGS}",
                "SELECT art_pre_f(3.0, 4.0, 'y')"),
    "art_mlp": ("CREATE MODEL art_mlp FROM (SELECT a, b, c, y FROM pts) TARGET y "
                f"FUNCTION art_mlp_f IAM_ROLE default MODEL_TYPE MLP {SETTINGS}",
                "SELECT art_mlp_f(3.0, 4.0, 'z')"),
    "art_km": ("CREATE MODEL art_km FROM (SELECT a, b FROM pts) FUNCTION art_km_f "
               "IAM_ROLE default AUTO OFF MODEL_TYPE KMEANS "
               "HYPERPARAMETERS DEFAULT EXCEPT (K '3') SETTINGS (S3_BUCKET 'unused')",
               "SELECT art_km_f(3.0, 4.0)"),
    "art_xgb": ("CREATE MODEL art_xgb FROM (SELECT a, b, y FROM pts) TARGET y "
                "FUNCTION art_xgb_f IAM_ROLE default AUTO OFF MODEL_TYPE XGBOOST "
                "OBJECTIVE 'binary:logistic' PREPROCESSORS 'none' "
                "HYPERPARAMETERS DEFAULT EXCEPT (NUM_ROUND '10') SETTINGS (S3_BUCKET 'unused')",
                "SELECT art_xgb_f(3.0, 4.0)"),
}
PICKLE_HEADER = b"\x80"  # protocol 2 and later


@dataclass
class Trained:
    server: Server
    port: int

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=self.port, user=ADMIN,
                               password=ADMIN_PW, dbname="quackml", connect_timeout=10,
                               autocommit=True)

    def manifest_path(self, model: str) -> tuple[Path, str]:
        engine = self.server.engine
        assert engine is not None
        record = engine.store.get("public", model)
        assert record is not None and record.artifact_file and record.artifact_sha256
        return engine.files(record).folder / record.artifact_file, record.artifact_sha256

    def reload(self, model: str) -> None:
        """Drop the loaded model, as a restart or the cache bound would."""
        engine = self.server.engine
        assert engine is not None
        record = engine.store.get("public", model)
        assert record is not None
        engine.cache.remove(record.function_name)
        engine.publish(record)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    folder = tmp_path_factory.mktemp("artifacts")
    srv = Server(Settings(host="127.0.0.1", port=0, database=str(folder / "db.duckdb"),
                          data_dir=str(folder / "data"), samples=False, training_workers=2,
                          training_threads=1, auth="scram-sha-256", superuser=ADMIN,
                          superuser_password=ADMIN_PW,
                          # scored in process: the pool's private socket IPC pickles
                          # messages (not files), and pickle is made to raise below
                          scoring_pool="off"))
    srv.start()
    try:
        state = Trained(srv, srv.port)
        with state.connect() as c:
            c.execute(TABLE)
            names = list(MODELS)
            for batch in (names[:3], names[3:]):  # within the per-user training queue
                for name in batch:
                    c.execute(MODELS[name][0])
                for name in batch:
                    assert _wait(c, name) == "READY", name
        yield state
    finally:
        srv.stop()


def _wait(c: psycopg.Connection, model: str, timeout: float = 300.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        rows: dict[str, object] = dict(c.execute(f"SHOW MODEL {model}").fetchall())
        state = str(rows["Model State"])
        if state != "TRAINING" or time.monotonic() > deadline:
            return state
        time.sleep(0.2)


def _manifest(path: Path) -> dict[str, object]:
    document = json.loads(path.read_bytes())
    assert isinstance(document, dict)
    return document


def _no_pickle(*args: object, **kwargs: object) -> object:
    raise AssertionError("something tried to unpickle")


# -- (a) no pickle anywhere ---------------------------------------------------------------
def test_artifact_files_hold_no_pickle(trained: Trained,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    kinds = set()
    for model in MODELS:
        manifest_path, sha = trained.manifest_path(model)
        assert manifest_path.name == ARTIFACT_FILE
        assert hashlib.sha256(manifest_path.read_bytes()).hexdigest() == sha
        folder = manifest_path.parent
        for path in folder.rglob("*"):
            if path.is_file():
                with path.open("rb") as f:
                    assert f.read(1) != PICKLE_HEADER, path.name
        manifest = _manifest(manifest_path)
        files = manifest["files"]
        assert isinstance(files, dict) and files, model
        for name, digest in files.items():
            assert name.rsplit(".", 1)[1] in ("txt", "ubj", "skops"), name
            assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest
        kinds.add(str(manifest["estimator"]["kind"]))  # type: ignore[index]
    assert {"preprocessed", "sklearn", "xgboost"} <= kinds

    monkeypatch.setattr(pickle, "loads", _no_pickle)
    monkeypatch.setattr(pickle, "load", _no_pickle)
    monkeypatch.setattr(pickle, "Unpickler", _no_pickle)
    for model in MODELS:
        read_artifact(*map(str, trained.manifest_path(model)))
        trained.reload(model)
    with trained.connect() as c:
        for model, (_, call) in MODELS.items():
            assert c.execute(call).fetchone() is not None, model


# -- (b) only reviewed types from skops, no old pickles ----------------------------------
def _kmeans_artifact() -> ModelArtifact:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=100), "b": rng.normal(size=100)})
    pipeline = Pipeline([("impute", SimpleImputer()),
                         ("kmeans", KMeans(n_clusters=2, n_init=1, random_state=0))])
    return ModelArtifact(
        features=(Column("a", "DOUBLE"), Column("b", "DOUBLE")),
        target=Column("cluster_id", "INTEGER"), problem_type=ProblemType.REGRESSION,
        labels=(), categories=(None, None), estimator=pipeline.fit(frame),
        metric_name="train:msd", metric_value=1.0, learner="kmeans")


def _evil_pipeline() -> Pipeline:
    # Resolving os.system is what an attacker's skops file would ask for.
    return Pipeline([("run", FunctionTransformer(func=os.system))])


def test_untrusted_skops_type_is_refused_even_with_matching_checksums(tmp_path: Path) -> None:
    path = tmp_path / ARTIFACT_FILE
    write_artifact(_kmeans_artifact(), str(path))
    manifest = _manifest(path)
    files = manifest["files"]
    assert isinstance(files, dict)
    (part,) = files
    assert part.endswith(".skops")
    evil = sio.dumps(_evil_pipeline())
    assert any("system" in t for t in sio.get_untrusted_types(data=evil))
    (tmp_path / part).write_bytes(evil)
    files[part] = hashlib.sha256(evil).hexdigest()  # as if the checksums were forged too
    data = json.dumps(manifest).encode()
    path.write_bytes(data)
    with pytest.raises(ArtifactCorrupt) as info:
        read_artifact(str(path), hashlib.sha256(data).hexdigest())
    assert info.value.sqlstate == "XX001"
    assert "does not load" in info.value.message and "system" in info.value.message


def test_writing_an_unreviewed_type_fails_at_training_not_at_scoring(tmp_path: Path) -> None:
    artifact = _kmeans_artifact()
    artifact.estimator = _evil_pipeline()
    with pytest.raises(TypeError, match="does not load back"):
        write_artifact(artifact, str(tmp_path / ARTIFACT_FILE))
    assert not (tmp_path / ARTIFACT_FILE).exists()


class _Tripwire:
    """Unpickling this object creates a folder: proof that bytes were unpickled."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (self.path,))


def test_old_pickle_artifact_is_refused_not_unpickled(tmp_path: Path) -> None:
    tripwire = tmp_path / "unpickled"
    data = pickle.dumps(_Tripwire(str(tripwire)), protocol=pickle.HIGHEST_PROTOCOL)
    path = tmp_path / "model.pkl"
    path.write_bytes(data)
    with pytest.raises(ArtifactOutdated) as info:
        read_artifact(str(path), hashlib.sha256(data).hexdigest())
    assert info.value.sqlstate == "55000"
    assert info.value.hint is not None and "retrain" in info.value.hint
    assert not tripwire.exists()


# -- (c) every file is checked --------------------------------------------------------------
@pytest.mark.parametrize("model", ["art_pre", "art_km", "art_xgb"])
def test_tampering_any_artifact_file_is_XX001(trained: Trained, model: str) -> None:
    manifest_path, _ = trained.manifest_path(model)
    files = _manifest(manifest_path)["files"]
    assert isinstance(files, dict)
    targets = [manifest_path, *(manifest_path.parent / name for name in files)]
    call = MODELS[model][1]
    with trained.connect() as c:
        for target in targets:
            original = target.read_bytes()
            target.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
            try:
                trained.reload(model)
                with pytest.raises(psycopg.Error) as info:
                    c.execute(call)
                assert info.value.sqlstate == "XX001", target.name
                assert c.execute("SELECT 1").fetchone() == (1,)
            finally:
                target.write_bytes(original)
            trained.reload(model)
            assert c.execute(call).fetchone() is not None, target.name
