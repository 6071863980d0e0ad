"""Benchmark: prediction functions inside queries, against the libraries' own predict.

One run, in this order (nothing runs concurrently):

1. generates a table ``t`` of ``--rows`` rows (default 1,000,000): ``id`` and
   20 DOUBLE columns ``c1..c20`` (seeded normal values), and trains, with the
   libraries directly, a LightGBM binary model (200 trees, 31 leaves) and an
   XGBoost binary model of the same size (200 trees, at most 31 leaves,
   lossguide) on its first 100,000 rows; plus a LightGBM model of the same
   size on wa_churn (19 features, 10 of them categorical), scored on a table
   ``churn_big`` of the wa_churn rows repeated to ``--rows`` rows;
2. (a) times the library's own predict on the same NumPy matrix with one
   thread (LightGBM ``Booster.predict(num_threads=1)``, XGBoost
   ``inplace_predict`` with ``nthread=1``) on ``--library-rows`` rows;
3. installs the three models in a QuackML database in this process
   (``bench/byom.py`` writes the artifact and a READY catalog row and
   registers the functions, as a finished training does, so the prediction
   path measured is a trained model's, labels and categorical encoding
   included; the SQL ``CREATE MODEL ... FROM 'file'`` imports a bare booster
   with a numeric result instead) and compiles them (``ModelCache.prepare``), then
   closes the database;
   then imports the same LightGBM and XGBoost boosters through SQL, as a user
   brings their own (their files, in the server's ``--file-dir``:
   ``CREATE MODEL m_imp_lgbm FROM 'lgbm.txt' FUNCTION f_imp_lgbm(float8, ...)
   RETURNS float8``), in a first ``quackml serve``, and waits until they are
   compiled (their manifest is written);
4. starts ``quackml serve`` on that database as a subprocess (so this is a
   restart: the models are loaded from their artifacts and compiled files)
   and, through psycopg:
   (e) the first ``SELECT f(c1..c20) FROM t WHERE id = 1`` after the start
   (loads the model), and the same query again;
   (b) ``SELECT sum(f(c1, ..., c20)::INT) FROM t`` at DuckDB threads 1 and 2
   (``SET threads``), as rows/s and as ratios to (a);
   (c) ``SELECT id, f(...) FROM t`` streamed to psycopg, rows/s;
   (d) a prepared ``SELECT f(...) FROM t WHERE id = $1`` (random ids; ``id`` is
   t's primary key, as a table looked up by id has), p50 and p99 latency, next
   to the same query without the function;
   the wa_churn model's ``sum(f(...)::INT)`` rows/s next to the bare-tree figure;
   the imported boosters' (b), (d) and (e) (``sum(f_imp(...))``: they return the
   probability), against the same (a); when onnxmltools is installed (it is not a
   dependency), the LightGBM model converted to ONNX and imported the same way
   (``RETURNS int4``, its label output), its (b) and (d);
   the server's peak resident-memory growth during
   ``CREATE TABLE scored AS SELECT id, f(...) FROM big`` over a table ``big``
   of ``--memory-rows`` rows (default 10,000,000) made with ``random()``.

Then (section ``pool``) the models only the library can score, whose
predict holds the GIL: scikit-learn MLP, linear learner (logistic
regression), random forest (as AutoML's ``rf``, 100 trees) and KMEANS,
trained on wa_churn as ``automl`` trains them (one-hot and scaling
Pipelines on category codes) and scored on ``churn_big`` (``--rows`` rows):

   (p1) one 2,048-row vector scored in this process and through a one-worker
   :class:`inference.procpool.ScoringPool` (Arrow IPC over a socket pair),
   ms per vector, and their difference (the round trip);
   (p2) ``SELECT sum(f(...)) FROM churn_big`` through psycopg at DuckDB
   threads 1 and 2, with ``--scoring-pool off`` (in process) and
   ``--scoring-pool on`` (``--scoring-workers``, default 2), rows/s and the
   ratio pool / in process. ``inference/procpool.py`` ``POOL_BY_DEFAULT``
   records the kinds where the pool won at 2 threads.

Then per-row explanations (issue 12, ``--only explain``): (x1) LightGBM's own
``pred_contrib`` (exact TreeSHAP) on 2,048 wa_churn rows at one thread, and
``SELECT sum((f_explain(...)).prediction) FROM churn_big`` over
``--explain-rows`` rows (default 100,000) at DuckDB threads 1 for the
200-tree wa_churn LightGBM model above; (x2) the same query for the model
AUTO ON trains on wa_churn's training rows with MAX_RUNTIME 20 (its learner
is printed: FLAML picks it).

    .venv/bin/python bench/inference.py [--rows 1000000] [--library-rows 200000]
        [--point-queries 300] [--memory-rows 10000000] [--only trees|pool|explain]
        [--scoring-workers 2] [--explain-rows 100000]

Prints figures; it is not a test. Machines are shared and noisy: compare
numbers within one run.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import lightgbm as lgb
import numpy as np
import psycopg
import pyarrow as pa
import xgboost as xgb

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.byom import install_model  # noqa: E402
from catalog.artifact import ModelArtifact  # noqa: E402
from catalog.frames import (  # noqa: E402
    estimator_input,
    fit_categories,
    to_frame,
)
from catalog.spec import Column, FeatureKind, ProblemType  # noqa: E402
from inference.evaluators import LibraryEvaluator  # noqa: E402
from inference.procpool import ScoringPool  # noqa: E402
from server.engine import Engine  # noqa: E402
from server.settings import Settings  # noqa: E402

FEATURES = 20
TRAIN_ROWS = 100_000
TREES, LEAVES = 200, 31
AUTO_BUDGET_S = 20   # the explain section's AUTO ON wa_churn model
CHURN_CSV = REPO / "examples" / "data" / "wa_churn.csv"
COLUMNS = ", ".join(f"c{i}" for i in range(1, FEATURES + 1))


@dataclass
class Figures:
    library: dict[str, float]
    compile_s: dict[str, float]
    first_ms: dict[str, float]
    again_ms: dict[str, float]
    sums: dict[tuple[str, int], float]
    stream: dict[str, float]
    point: dict[str, tuple[float, float]]
    memory_mb: float
    control: float = float("nan")
    import_s: dict[str, float] | None = None


def make_data(rows: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(42)
    x = rng.normal(size=(rows, FEATURES))
    logit = (x[:, 0] + x[:, 1] * x[:, 2] - 0.5 * x[:, 3] ** 2 + np.sin(3 * x[:, 4])
             + x[:, 5:].sum(1) / 5)
    y = (logit + rng.normal(size=rows) > 0).astype(np.int64)
    return x, y


def train_models(x: np.ndarray, y: np.ndarray) -> dict[str, ModelArtifact]:
    frame = to_frame([pa.array(x[:TRAIN_ROWS, j]) for j in range(FEATURES)],
                     [Column(f"c{j + 1}", "DOUBLE") for j in range(FEATURES)], [None] * FEATURES)
    yt = y[:TRAIN_ROWS]
    lgbm = lgb.LGBMClassifier(n_estimators=TREES, num_leaves=LEAVES, verbose=-1,
                              n_jobs=2).fit(frame, yt)
    xgbm = xgb.XGBClassifier(n_estimators=TREES, max_leaves=LEAVES, max_depth=0,
                             grow_policy="lossguide", tree_method="hist", n_jobs=2).fit(frame, yt)
    features = tuple(Column(f"c{j + 1}", "DOUBLE") for j in range(FEATURES))
    out = {}
    for name, est, codes in (("lgbm", lgbm, False), ("xgb", xgbm, True)):
        out[name] = ModelArtifact(
            features=features, target=Column("y", "BOOLEAN"), problem_type=ProblemType.BINARY,
            labels=(False, True), categories=(None,) * FEATURES, estimator=est,
            metric_name="none", metric_value=0.0, category_codes=codes,
            learner="lgbm" if name == "lgbm" else "xgboost")
    out["churn"] = train_churn()
    return out


def churn_query() -> str:
    return f"SELECT * EXCLUDE (split) FROM read_csv('{CHURN_CSV}')"


def train_churn() -> ModelArtifact:
    con = duckdb.connect(":memory:")
    table = con.sql(f"{churn_query()} WHERE split = 'train'").to_arrow_table()
    relation = con.sql(churn_query())
    names, types = relation.columns, relation.types
    con.close()
    columns = [Column(n, str(t)) for n, t in zip(names, types, strict=True)]
    features = [c for c in columns if c.name != "churn"]
    categories = fit_categories(table, features)
    frame = to_frame([table.column(f.name) for f in features], features, categories)
    y = np.asarray(table.column("churn").to_pylist(), dtype=np.int64)
    est = lgb.LGBMClassifier(n_estimators=TREES, num_leaves=LEAVES, verbose=-1, n_jobs=2,
                             min_child_samples=5).fit(estimator_input(frame, False), y)
    return ModelArtifact(
        features=tuple(features), target=Column("churn", "BOOLEAN"),
        problem_type=ProblemType.BINARY, labels=(False, True), categories=categories,
        estimator=est, metric_name="none", metric_value=0.0, threshold=0.35, learner="lgbm")


def library_rows_per_s(models: dict[str, ModelArtifact], x: np.ndarray) -> dict[str, float]:
    out = {}
    booster = models["lgbm"].estimator.booster_
    booster.predict(x[:1000], num_threads=1)
    t = time.perf_counter()
    booster.predict(x, num_threads=1)
    out["lgbm"] = len(x) / (time.perf_counter() - t)
    xb = models["xgb"].estimator.get_booster()
    xb.set_param({"nthread": 1})
    xb.inplace_predict(x[:1000])
    t = time.perf_counter()
    xb.inplace_predict(x)
    out["xgb"] = len(x) / (time.perf_counter() - t)
    return out


def parallel_control(models: dict[str, ModelArtifact], x: np.ndarray) -> float:
    """How much two Python threads gain over one right now, for LightGBM's own predict
    (which releases the GIL): about 2 on two idle cores, about 1 when another process
    holds a core. It tells whether the 2-thread figures below could scale at all."""
    booster = models["lgbm"].estimator.booster_
    part = x[:20_000]

    def work() -> None:
        for i in range(0, len(part), 2_000):
            booster.predict(part[i:i + 2_000], num_threads=1)

    t = time.perf_counter()
    work()
    one = time.perf_counter() - t
    threads = [threading.Thread(target=work) for _ in range(2)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return 2 * one / (time.perf_counter() - t)


def prepare_database(folder: Path, models: dict[str, ModelArtifact], x: np.ndarray
                     ) -> dict[str, float]:
    settings = Settings(database=str(folder / "bench.duckdb"), data_dir=str(folder / "data"),
                        samples=False, training_workers=1,
                        file_dir=str(CHURN_CSV.parent))   # read_csv of the churn rows
    engine = Engine(settings)
    try:
        data = {"id": pa.array(np.arange(1, len(x) + 1, dtype=np.int64))}
        data.update({f"c{j + 1}": pa.array(x[:, j]) for j in range(FEATURES)})
        arrow = pa.table(data)
        engine.con.register("arrow_t", arrow)
        engine.con.execute("CREATE TABLE t AS SELECT * FROM arrow_t")
        engine.con.execute("ALTER TABLE t ADD PRIMARY KEY (id)")
        engine.con.unregister("arrow_t")
        copies = len(x) // 7043 + 1
        engine.con.execute(f"CREATE TABLE churn_big AS SELECT c.* EXCLUDE (churn) FROM "
                           f"({churn_query()}) c, range({copies}) LIMIT {len(x)}")
        compile_s = {}
        for name, artifact in models.items():
            install_model(engine, f"m_{name}", f"f_{name}", artifact)
            t = time.perf_counter()
            loaded = engine.cache.prepare(f"f_{name}")
            compile_s[name] = time.perf_counter() - t
            if loaded.evaluator.kind != "lignum-compiled":
                print(f"note: f_{name} is served by {loaded.evaluator.kind}: "
                      f"{loaded.compile_error}")
        engine.con.execute("CHECKPOINT")
        return compile_s
    finally:
        engine.close()


IMPORTED = {"lgbm": "lgbm.txt", "xgb": "xgb.json"}   # trained model -> its file
ONNX_FILE = "lgbm.onnx"   # the LightGBM model converted by onnxmltools (when installed)


def write_model_files(folder: Path, models: dict[str, ModelArtifact]) -> Path:
    """The LightGBM and XGBoost boosters as a user would bring them (LightGBM text,
    XGBoost JSON), with the churn CSV, in the folder given to the server as --file-dir."""
    files = folder / "files"
    files.mkdir()
    shutil.copy(CHURN_CSV, files / CHURN_CSV.name)
    (files / IMPORTED["lgbm"]).write_text(models["lgbm"].estimator.booster_.model_to_string())
    models["xgb"].estimator.get_booster().save_model(str(files / IMPORTED["xgb"]))
    try:   # not a dependency: the ONNX figure is printed when it is installed
        import onnxmltools
        from onnxmltools.convert.common.data_types import FloatTensorType
    except ImportError:
        return files
    onx = onnxmltools.convert_lightgbm(
        models["lgbm"].estimator, initial_types=[("X", FloatTensorType([None, FEATURES]))],
        zipmap=False, target_opset=15)
    (files / ONNX_FILE).write_bytes(onx.SerializeToString())
    return files


def import_models(folder: Path, files: Path) -> dict[str, float]:
    """CREATE MODEL ... FROM 'file' for each booster in a first server; seconds until
    its compiled form is stored (the manifest beside the artifact is written last)."""
    seconds = {}
    server = ServerProcess(folder, file_dir=files)
    try:
        with server.connect() as c:
            for name, file in IMPORTED.items():
                t = time.perf_counter()
                types = ", ".join(["float8"] * FEATURES)
                c.execute(f"CREATE MODEL m_imp_{name} FROM '{file}' "
                          f"FUNCTION f_imp_{name} ({types}) RETURNS float8")
                c.execute(f"SELECT f_imp_{name}({COLUMNS}) FROM t WHERE id = 1").fetchall()
                pattern = f"m_imp_{name}/*/artifact.json.lignum.json"
                deadline = time.monotonic() + 900
                while not list((folder / "data" / "models" / "public").glob(pattern)):
                    if time.monotonic() > deadline:
                        raise SystemExit(f"f_imp_{name} was not compiled:\n"
                                         + "".join(server.lines))
                    time.sleep(0.2)
                seconds[name] = time.perf_counter() - t
            if (files / ONNX_FILE).exists():   # its first output: the label (0 or 1)
                c.execute(f"CREATE MODEL m_imp_onnx FROM '{ONNX_FILE}' FUNCTION f_imp_onnx "
                          f"({', '.join(['float8'] * FEATURES)}) RETURNS int4")
    finally:
        server.stop()
    return seconds


class ServerProcess:
    def __init__(self, folder: Path, *extra: str, file_dir: Path = CHURN_CSV.parent):
        env = {k: v for k, v in os.environ.items() if not k.startswith("QUACKML_")}
        cmd = [sys.executable, "-m", "server", "serve", "--port", "0", "--http-port", "0",
               "--database", str(folder / "bench.duckdb"), "--data-dir", str(folder / "data"),
               "--no-samples", "--training-workers", "1", "--log-level", "WARNING",
               # the churn CSV (and the imported model files) in --file-dir; SET threads
               # between runs
               "--file-dir", str(file_dir), "--no-lock-configuration", *extra]
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        assert self.proc.stdout is not None
        self.lines: list[str] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            match = re.search(r"listening on [\d.]+:(\d+)", line)
            if match:
                self.port = int(match.group(1))
                threading.Thread(target=self._drain, daemon=True).start()
                return
        self.proc.kill()
        raise SystemExit("server did not start:\n" + "".join(self.lines))

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(f"host=127.0.0.1 port={self.port} user=bench dbname=quackml",
                               autocommit=True, prepare_threshold=None)

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def timed(conn: psycopg.Connection, query: str) -> float:
    t = time.perf_counter()
    conn.execute(query).fetchall()
    return time.perf_counter() - t


def churn_features(models: dict[str, ModelArtifact]) -> str:
    return ", ".join(f.name for f in models["churn"].features)


def measure(server: ServerProcess, models: dict[str, ModelArtifact], rows: int,
            point_queries: int, memory_rows: int, onnx: bool) -> Figures:
    first, again = {}, {}
    with server.connect() as c:
        for name in ("lgbm", "xgb", "imp_lgbm", "imp_xgb"):
            q = f"SELECT f_{name}({COLUMNS}) FROM t WHERE id = 1"
            first[name] = timed(c, q) * 1000
            again[name] = timed(c, q) * 1000
        # Before any large result raised the server's peak: its growth is this statement's.
        randoms = ", ".join(f"random() AS c{i}" for i in range(1, FEATURES + 1))
        c.execute(f"CREATE TABLE big AS SELECT range AS id, {randoms} "
                  f"FROM range({memory_rows})")
        before = server.peak_rss_mb()
        c.execute(f"CREATE TABLE scored AS SELECT id, f_lgbm({COLUMNS}) AS p FROM big")
        memory = server.peak_rss_mb() - before
        c.execute("DROP TABLE scored")
        c.execute("DROP TABLE big")
        sums: dict[tuple[str, int], float] = {}
        for threads in (1, 2):
            c.execute(f"SET threads = {threads}")
            for name in ("lgbm", "xgb", "imp_lgbm", "imp_xgb", "imp_onnx", "churn"):
                if name == "imp_onnx" and not onnx:
                    continue
                table = "churn_big" if name == "churn" else "t"
                cols = churn_features(models) if name == "churn" else COLUMNS
                cast = "" if name.startswith("imp_") else "::INT"  # imported: probability
                q = f"SELECT sum(f_{name}({cols}){cast}) FROM {table}"
                timed(c, f"{q} WHERE rowid < 50000")  # warm
                sums[(name, threads)] = rows / timed(c, q)
        c.execute("RESET threads")
        stream = {}
        for name in ("lgbm", "xgb"):
            t = time.perf_counter()
            n = 0
            with c.cursor() as cur:
                cur.execute(f"SELECT id, f_{name}({COLUMNS}) FROM t")
                while batch := cur.fetchmany(50_000):
                    n += len(batch)
            stream[name] = n / (time.perf_counter() - t)
        rng = np.random.default_rng(7)
        point = {}
        for name, expr in (("bare", "c1"), ("lgbm", f"f_lgbm({COLUMNS})"),
                           ("xgb", f"f_xgb({COLUMNS})"), ("imp_lgbm", f"f_imp_lgbm({COLUMNS})"),
                           ("imp_xgb", f"f_imp_xgb({COLUMNS})"),
                           ("imp_onnx", f"f_imp_onnx({COLUMNS})")):
            if name == "imp_onnx" and not onnx:
                continue
            q = f"SELECT {expr} FROM t WHERE id = %s"
            for i in range(20):
                c.execute(q, (int(i + 1),), prepare=True).fetchall()
            lat = []
            for i in rng.integers(1, rows + 1, point_queries):
                t = time.perf_counter()
                c.execute(q, (int(i),), prepare=True).fetchall()
                lat.append((time.perf_counter() - t) * 1000)
            lat.sort()
            point[name] = (statistics.median(lat), lat[min(len(lat) - 1, int(len(lat) * 0.99))])
    return Figures({}, {}, first, again, sums, stream, point, memory)


def report(f: Figures, rows: int, library_rows: int, memory_rows: int) -> None:
    print(f"\nQuackML inference benchmark: {rows:,} rows x {FEATURES} DOUBLE, binary models of "
          f"{TREES} trees / {LEAVES} leaves; wa_churn LightGBM of the same size "
          f"(19 features, 10 categorical); cores {os.cpu_count()}")
    print("compile at first load (s): " + ", ".join(f"{k} {v:.1f}" for k, v in f.compile_s.items()))
    print(f"\n{'':44}{'LightGBM':>14}{'XGBoost':>14}")
    print(f"{'(a) library predict, 1 thread, rows/s':44}"
          f"{f.library['lgbm']:>14,.0f}{f.library['xgb']:>14,.0f}   ({library_rows:,} rows)")
    for threads in (1, 2):
        print(f"{f'(b) sum(f(...)) through psycopg, {threads} thr, rows/s':44}"
              f"{f.sums[('lgbm', threads)]:>14,.0f}{f.sums[('xgb', threads)]:>14,.0f}")
    for threads in (1, 2):
        print(f"{f'    (b)/(a) at {threads} thread(s)':44}"
              f"{f.sums[('lgbm', threads)] / f.library['lgbm']:>13.2f}x"
              f"{f.sums[('xgb', threads)] / f.library['xgb']:>13.2f}x")
    print(f"{'    (b) 2 threads / 1 thread':44}"
          f"{f.sums[('lgbm', 2)] / f.sums[('lgbm', 1)]:>13.2f}x"
          f"{f.sums[('xgb', 2)] / f.sums[('xgb', 1)]:>13.2f}x")
    print(f"{'    control: LightGBM predict, 2 Py threads/1':44}{f.control:>13.2f}x"
          "                (about 2 on idle cores, about 1 on a busy machine)")
    print(f"{'(c) SELECT id, f(...) streamed, rows/s':44}"
          f"{f.stream['lgbm']:>14,.0f}{f.stream['xgb']:>14,.0f}")
    print(f"{'(d) prepared single row p50 / p99, ms':44}"
          f"{f.point['lgbm'][0]:>7.2f}/{f.point['lgbm'][1]:<6.2f}"
          f"{f.point['xgb'][0]:>7.2f}/{f.point['xgb'][1]:<6.2f}"
          f"  (without f: {f.point['bare'][0]:.2f}/{f.point['bare'][1]:.2f})")
    print(f"{'(e) first prediction after restart, ms':44}"
          f"{f.first_ms['lgbm']:>14.1f}{f.first_ms['xgb']:>14.1f}"
          f"   (next query: {f.again_ms['lgbm']:.1f} / {f.again_ms['xgb']:.1f})")
    print("\nimported boosters (CREATE MODEL ... FROM 'file' RETURNS float8, the same "
          "trees), compiled after import in "
          + ", ".join(f"{k} {v:.1f} s" for k, v in (f.import_s or {}).items()))
    for threads in (1, 2):
        print(f"{f'(b) sum(f_imp(...)), {threads} thr, rows/s':44}"
              f"{f.sums[('imp_lgbm', threads)]:>14,.0f}{f.sums[('imp_xgb', threads)]:>14,.0f}")
    for threads in (1, 2):
        print(f"{f'    (b)/(a) at {threads} thread(s)':44}"
              f"{f.sums[('imp_lgbm', threads)] / f.library['lgbm']:>13.2f}x"
              f"{f.sums[('imp_xgb', threads)] / f.library['xgb']:>13.2f}x")
    print(f"{'    imported / trained, 1 thread':44}"
          f"{f.sums[('imp_lgbm', 1)] / f.sums[('lgbm', 1)]:>13.2f}x"
          f"{f.sums[('imp_xgb', 1)] / f.sums[('xgb', 1)]:>13.2f}x")
    print(f"{'(d) prepared single row p50 / p99, ms':44}"
          f"{f.point['imp_lgbm'][0]:>7.2f}/{f.point['imp_lgbm'][1]:<6.2f}"
          f"{f.point['imp_xgb'][0]:>7.2f}/{f.point['imp_xgb'][1]:<6.2f}")
    print(f"{'(e) first prediction after restart, ms':44}"
          f"{f.first_ms['imp_lgbm']:>14.1f}{f.first_ms['imp_xgb']:>14.1f}"
          f"   (next query: {f.again_ms['imp_lgbm']:.1f} / {f.again_ms['imp_xgb']:.1f})\n")
    if ("imp_onnx", 1) in f.sums:
        print("imported ONNX (the LightGBM model converted by onnxmltools, scored by "
              "onnxruntime; RETURNS int4, the label):")
        for threads in (1, 2):
            rate = f.sums[("imp_onnx", threads)]
            print(f"{f'(b) sum(f_onnx(...)), {threads} thr, rows/s':44}{rate:>14,.0f}"
                  f"   = {rate / f.library['lgbm']:.2f}x (a) LightGBM, "
                  f"{rate / f.sums[('lgbm', threads)]:.2f}x the trained model")
        print(f"{'(d) prepared single row p50 / p99, ms':44}"
              f"{f.point['imp_onnx'][0]:>7.2f}/{f.point['imp_onnx'][1]:<6.2f}\n")
    for threads in (1, 2):
        churn = f.sums[("churn", threads)]
        print(f"wa_churn model sum(f(...)), {threads} thr: {churn:,.0f} rows/s = "
              f"{churn / f.sums[('lgbm', threads)]:.2f}x the bare-tree LightGBM figure")
    print(f"server peak RSS growth during CREATE TABLE scored AS SELECT id, f(...) FROM big "
          f"({memory_rows:,} rows x 20 DOUBLE, LightGBM): {f.memory_mb:.0f} MB")


# -- section "pool": GIL-bound models in process vs the scoring pool ------------

POOL_KINDS = ("mlp", "linear_learner", "rf", "kmeans")
POOL_VECTOR = 2048
CHURN_TARGET = Column("churn", "BOOLEAN")


def train_sklearn(kind: str, table: pa.Table, features: list[Column],
                  target: Column = CHURN_TARGET) -> ModelArtifact:
    """A scikit-learn model of ``kind`` as ``automl`` packs it: MLP and linear learner
    Pipelines (automl.learners) and AutoML's random forest on category codes, KMEANS
    (numeric features only) as AUTO OFF MODEL_TYPE KMEANS fits it. A numeric target
    other than BOOLEAN makes a regression model, any other a classifier."""
    from sklearn.cluster import KMeans
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    from automl.learners import linear_pipeline, mlp_pipeline

    if kind == "kmeans":
        numeric = [f for f in features if f.kind is FeatureKind.NUMERIC]
        frame = to_frame([table.column(f.name) for f in numeric], numeric,
                         [None] * len(numeric))
        est = Pipeline([("impute", SimpleImputer(strategy="mean", keep_empty_features=True)),
                        ("kmeans", KMeans(n_clusters=5, n_init=1, random_state=0))]).fit(frame)
        return ModelArtifact(
            features=tuple(numeric), target=Column("cluster", "BIGINT"),
            problem_type=ProblemType.REGRESSION, labels=(),
            categories=(None,) * len(numeric), estimator=est, metric_name="none",
            metric_value=0.0, learner="kmeans")
    categories = fit_categories(table, features)
    frame = estimator_input(to_frame([table.column(f.name) for f in features], features,
                                     categories), True)
    values = table.column(target.name).to_pylist()
    classify = target.type == "BOOLEAN" or target.kind is not FeatureKind.NUMERIC
    labels: tuple[object, ...] = ()
    if classify:
        labels = tuple(sorted(set(values)))
        y = np.array([labels.index(v) for v in values])
    else:
        y = np.asarray(values, dtype=np.float64)
    model: object
    if kind == "mlp":
        model = mlp_pipeline(classify, width=32, layers=1, alpha=1e-4, learning_rate_init=1e-3)
    elif kind == "linear_learner":
        model = linear_pipeline(classify, C=1.0, alpha=1.0)
    elif kind == "rf":
        forest = RandomForestClassifier if classify else RandomForestRegressor
        model = forest(n_estimators=100, max_leaf_nodes=64, n_jobs=2, random_state=0)
    else:
        raise ValueError(kind)
    est = model.fit(frame, y)  # type: ignore[attr-defined]
    problem = (ProblemType.REGRESSION if not classify else
               ProblemType.BINARY if len(labels) == 2 else ProblemType.MULTICLASS)
    return ModelArtifact(
        features=tuple(features), target=target, problem_type=problem, labels=labels,
        categories=categories, estimator=est, metric_name="none", metric_value=0.0,
        category_codes=True, learner=kind)


def pool_models() -> tuple[dict[str, ModelArtifact], pa.Table]:
    """The GIL-bound models, and 2,048 wa_churn rows to score one vector with."""
    con = duckdb.connect(":memory:")
    table = con.sql(f"{churn_query()} WHERE split = 'train'").to_arrow_table()
    relation = con.sql(churn_query())
    columns = [Column(n, str(t)) for n, t in zip(relation.columns, relation.types, strict=True)]
    con.close()
    features = [c for c in columns if c.name != "churn"]
    models = {kind: train_sklearn(kind, table, features) for kind in POOL_KINDS}
    return models, table.slice(0, POOL_VECTOR)


def vector_ms(models: dict[str, ModelArtifact], vector: pa.Table, folder: Path,
              repeat: int = 30) -> dict[str, tuple[float, float]]:
    """(in process, one-worker pool) ms to score one vector, best of ``repeat``."""
    from catalog.artifact import write_artifact

    pool = ScoringPool(1)
    out = {}
    try:
        for kind, artifact in models.items():
            path = str(folder / f"{kind}.json")
            sha = write_artifact(artifact, path)
            args = [vector.column(f.name).combine_chunks() for f in artifact.features]
            local = LibraryEvaluator(artifact)
            key = f"{sha}:{path}"
            pool.register(key)
            pool.score(key, path, sha, "predict", args, kind)  # spawn, load
            times = {}
            for where in ("local", "pool"):
                best = float("inf")
                for _ in range(repeat):
                    t = time.perf_counter()
                    if where == "local":
                        local.predict(args)
                    else:
                        pool.score(key, path, sha, "predict", args, kind)
                    best = min(best, time.perf_counter() - t)
                times[where] = best * 1000
            out[kind] = (times["local"], times["pool"])
    finally:
        pool.close()
    return out


def prepare_pool_database(folder: Path, models: dict[str, ModelArtifact], rows: int) -> None:
    settings = Settings(database=str(folder / "bench.duckdb"), data_dir=str(folder / "data"),
                        samples=False, training_workers=1, scoring_workers=0,
                        file_dir=str(CHURN_CSV.parent))
    engine = Engine(settings)
    try:
        copies = rows // 7043 + 1
        engine.con.execute(f"CREATE TABLE churn_big AS SELECT c.* EXCLUDE (churn) FROM "
                           f"({churn_query()}) c, range({copies}) LIMIT {rows}")
        for kind, artifact in models.items():
            install_model(engine, f"m_{kind}", f"f_{kind}", artifact)
        engine.con.execute("CHECKPOINT")
    finally:
        engine.close()


def measure_pool(server: ServerProcess, models: dict[str, ModelArtifact], rows: int
                 ) -> dict[tuple[str, int], float]:
    out = {}
    with server.connect() as c:
        for threads in (2, 1):
            c.execute(f"SET threads = {threads}")
            for kind, artifact in models.items():
                cols = ", ".join(f'"{f.name}"' for f in artifact.features)
                value = f"f_{kind}({cols})"
                if artifact.problem_type is not ProblemType.REGRESSION:
                    value += "::INT"
                q = f"SELECT sum({value}) FROM churn_big"
                timed(c, f"{q} WHERE rowid < 100000")  # load (and start the workers)
                out[(kind, threads)] = rows / timed(c, q)
        c.execute("RESET threads")
    return out


def run_pool_section(rows: int, workers: int) -> None:
    print("training the scikit-learn models (wa_churn) ...", flush=True)
    models, vector = pool_models()
    figures: dict[str, dict[tuple[str, int], float]] = {}
    with tempfile.TemporaryDirectory(prefix="quackml-bench-pool-") as tmp:
        folder = Path(tmp)
        per_vector = vector_ms(models, vector, folder)
        print(f"writing churn_big ({rows:,} rows), installing the models ...", flush=True)
        prepare_pool_database(folder, models, rows)
        for mode in ("off", "on"):
            server = ServerProcess(folder, "--scoring-pool", mode,
                                   "--scoring-workers", str(workers))
            try:
                figures[mode] = measure_pool(server, models, rows)
            finally:
                server.stop()
    print(f"\nGIL-bound models (scikit-learn, wa_churn: 19 features, 10 categorical; "
          f"KMEANS: its 9 numeric ones), {rows:,} rows, scoring pool of {workers} "
          f"worker(s); cores {os.cpu_count()}")
    print(f"{'(p1) one 2,048-row vector, ms':34}{'in process':>12}{'pool':>10}"
          f"{'round trip':>12}")
    for kind, (local, pooled) in per_vector.items():
        print(f"{'    ' + kind:34}{local:>12.2f}{pooled:>10.2f}{pooled - local:>12.2f}")
    print(f"{'(p2) sum(f(...)), rows/s':34}{'threads':>8}{'in process':>14}{'pool':>14}"
          f"{'pool/in':>10}")
    for kind in models:
        for threads in (1, 2):
            local = figures["off"][(kind, threads)]
            pooled = figures["on"][(kind, threads)]
            print(f"{'    ' + kind:34}{threads:>8}{local:>14,.0f}{pooled:>14,.0f}"
                  f"{pooled / local:>9.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--library-rows", type=int, default=200_000)
    parser.add_argument("--point-queries", type=int, default=300)
    parser.add_argument("--memory-rows", type=int, default=10_000_000)
    parser.add_argument("--only", choices=("trees", "pool", "explain"),
                        help="run one section: trees (LightGBM/XGBoost, (a)-(e)), pool, or "
                             "explain")
    parser.add_argument("--scoring-workers", type=int, default=2)
    parser.add_argument("--explain-rows", type=int, default=100_000)
    args = parser.parse_args()
    if args.only in (None, "trees"):
        run_trees_section(args)
    if args.only in (None, "pool"):
        run_pool_section(args.rows, args.scoring_workers)
    if args.only in (None, "explain"):
        run_explain_section(args.explain_rows)


def run_explain_section(rows: int) -> None:
    """Per-row explanations (f_explain, exact TreeSHAP) of the wa_churn LightGBM model
    through SQL at one DuckDB thread, next to LightGBM's own pred_contrib at one thread."""
    print("training the wa_churn model ...", flush=True)
    churn = train_churn()
    features = ", ".join(f.name for f in churn.features)
    con = duckdb.connect(":memory:")
    rows_table = con.sql(churn_query()).to_arrow_table()   # the engine reads no files
    train_table = con.sql(f"{churn_query()} WHERE split = 'train'").to_arrow_table()
    sample = rows_table.slice(0, 2048)
    con.close()
    x = estimator_input(churn.frame([sample.column(f.name) for f in churn.features]), False)
    booster = churn.estimator.booster_
    t = time.perf_counter()
    booster.predict(x, pred_contrib=True, num_threads=1)
    library = len(x) / (time.perf_counter() - t)
    with tempfile.TemporaryDirectory(prefix="quackml-bench-") as tmp:
        folder = Path(tmp)
        engine = Engine(Settings(database=str(folder / "bench.duckdb"),
                                 data_dir=str(folder / "data"), samples=False,
                                 training_workers=1))
        try:
            copies = rows // len(rows_table) + 1
            engine.con.register("churn_rows", rows_table)
            engine.con.execute(f"CREATE TABLE churn_big AS SELECT c.* EXCLUDE (churn) FROM "
                               f"churn_rows c, range({copies}) LIMIT {rows}")
            engine.con.unregister("churn_rows")
            engine.con.register("churn_train_rows", train_table)
            engine.con.execute("CREATE TABLE churn_train AS SELECT * FROM churn_train_rows")
            engine.con.unregister("churn_train_rows")
            install_model(engine, "m_churn", "f_churn", churn)
            engine.con.execute("CHECKPOINT")
        finally:
            engine.close()
        server = ServerProcess(folder)
        try:
            with server.connect() as c:
                c.execute("SET threads = 1")
                q = f"SELECT sum((f_churn_explain({features})).prediction) FROM churn_big"
                timed(c, f"{q} WHERE rowid < 2048")  # load the model
                sql = rows / timed(c, q)
                # the model AUTO ON trains on wa_churn (its training rows, as
                # examples/data/wa_churn.csv splits them)
                c.execute("CREATE MODEL auto_churn FROM churn_train TARGET churn "
                          f"FUNCTION auto_churn_f SETTINGS (MAX_RUNTIME {AUTO_BUDGET_S})")
                while (shown := dict(c.execute("SHOW MODEL auto_churn").fetchall()))[
                        "Model State"] == "TRAINING":
                    time.sleep(1)
                learner = f"{shown['Model State']}, {shown['Model Type']}"
                auto = float("nan")
                if shown["Model State"] == "READY":
                    q = (f"SELECT sum((auto_churn_f_explain({features})).prediction) "
                         "FROM churn_big")
                    timed(c, f"{q} WHERE rowid < 2048")
                    auto = rows / timed(c, q)
        finally:
            server.stop()
    print(f"\nPer-row explanations: wa_churn LightGBM ({TREES} trees / {LEAVES} leaves, "
          f"{len(churn.features)} features), exact TreeSHAP, 1 thread")
    print(f"{'LightGBM pred_contrib, 2,048 rows, rows/s':52}{library:>12,.0f}")
    print(f"{f'SELECT sum((f_explain(...)).prediction), {rows:,} rows':52}{sql:>12,.0f}")
    print(f"{'    SQL / library':52}{sql / library:>11.2f}x")
    print(f"the model AUTO ON trains on wa_churn (MAX_RUNTIME {AUTO_BUDGET_S}; {learner}):")
    print(f"{f'SELECT sum((f_explain(...)).prediction), {rows:,} rows':52}{auto:>12,.0f}")


def run_trees_section(args: argparse.Namespace) -> None:
    x, y = make_data(args.rows)
    print(f"training the models ({TRAIN_ROWS:,} rows) ...", flush=True)
    models = train_models(x, y)
    library = library_rows_per_s(models, np.ascontiguousarray(x[:args.library_rows]))
    with tempfile.TemporaryDirectory(prefix="quackml-bench-") as tmp:
        folder = Path(tmp)
        print("writing the tables, installing and compiling the models ...", flush=True)
        compile_s = prepare_database(folder, models, x)
        files = write_model_files(folder, models)
        print("importing the boosters through SQL and compiling them ...", flush=True)
        import_s = import_models(folder, files)
        server = ServerProcess(folder, file_dir=files)
        try:
            figures = measure(server, models, args.rows, args.point_queries,
                              args.memory_rows, (files / ONNX_FILE).exists())
            figures.control = parallel_control(models, x)
        finally:
            server.stop()
    figures.library = library
    figures.compile_s = compile_s
    figures.import_s = import_s
    report(figures, args.rows, args.library_rows, args.memory_rows)


if __name__ == "__main__":
    main()
