"""CREATE MODEL variants written the way the Redshift ML docs write them, through a
real server and psycopg: AUTO ON with guidance (MODEL_TYPE, PROBLEM_TYPE,
OBJECTIVE, PREPROCESSORS), AUTO OFF XGBoost, KMEANS, and the settings.

All models are created up front by one session fixture (training runs in the
server's worker pool meanwhile); each test then waits for its model.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from sklearn.metrics import f1_score

from tests.conftest import RunningServer, wait_for_state

CREDIT = ("Seniority, Home, Time, Age, Marital, Records, Job, Expenses, Income, Assets, Debt, "
          "Amount, Price")
CREDIT_NUMERIC = "Seniority, Time, Age, Expenses, Income, Assets, Debt, Amount, Price"
HPC_NUMERIC = "compounds, input_fields, iterations, num_pending, hour"
DIAMOND_NUMERIC = 'carat, depth, "table", x, y, z'

MODELS = {
    # AUTO ON, default objective (F1 for a binary target): the credit check.
    "credit_default": f"""
        CREATE MODEL credit_default
        FROM (SELECT {CREDIT}, Status FROM credit WHERE split = 'train')
        TARGET Status
        FUNCTION predict_credit_default
        IAM_ROLE default
        SETTINGS (S3_BUCKET 'your-bucket', MAX_RUNTIME 8)""",
    # AUTO ON with guidance, as in the Redshift customer churn tutorial.
    "credit_xgb_guided": f"""
        CREATE MODEL credit_xgb_guided
        FROM (SELECT {CREDIT}, Status FROM credit WHERE split = 'train')
        TARGET Status
        FUNCTION predict_credit_xgb_guided
        IAM_ROLE 'arn:aws:iam::123456789012:role/RedshiftML'
        MODEL_TYPE XGBOOST
        PROBLEM_TYPE BINARY_CLASSIFICATION
        OBJECTIVE 'AUC'
        SETTINGS (S3_BUCKET 'your-bucket', MAX_RUNTIME 4)""",
    "credit_mlp": f"""
        CREATE MODEL credit_mlp
        FROM (SELECT {CREDIT}, Status FROM credit WHERE split = 'train')
        TARGET Status
        FUNCTION predict_credit_mlp
        IAM_ROLE default
        MODEL_TYPE MLP
        PROBLEM_TYPE ( BINARY_CLASSIFICATION )
        OBJECTIVE ( 'Accuracy' )
        SETTINGS (S3_BUCKET 'your-bucket', MAX_RUNTIME 4)""",
    "diamonds_linear": f"""
        CREATE MODEL diamonds_linear
        FROM (SELECT {DIAMOND_NUMERIC}, cut, price FROM diamonds WHERE split = 'train')
        TARGET price
        FUNCTION predict_diamonds_linear
        IAM_ROLE default
        MODEL_TYPE linear_learner
        PROBLEM_TYPE REGRESSION
        OBJECTIVE 'MSE'
        SETTINGS (S3_BUCKET 'your-bucket', MAX_CELLS 30000, MAX_RUNTIME 4)""",
    # PREPROCESSORS for some columns; the others are still chosen automatically.
    "credit_preprocessed": f"""
        CREATE MODEL credit_preprocessed
        FROM (SELECT {CREDIT}, Status FROM credit WHERE split = 'train')
        TARGET Status
        FUNCTION predict_credit_preprocessed
        IAM_ROLE default
        PREPROCESSORS '[
          {{"ColumnSet": ["Income", "Assets", "Debt"],
            "Transformers": ["ImputerWithIndicator", "StandardScaler"]}},
          {{"ColumnSet": ["Home", "Marital"], "Transformers": ["OneHotEncoder"]}},
          {{"ColumnSet": ["Job"], "Transformers": ["OrdinalEncoder"]}},
          {{"ColumnSet": ["Seniority", "Age"], "Transformers": ["Imputer", "PCA"]}},
          {{"ColumnSet": ["Amount"], "Transformers": ["MinMax"]}},
          {{"ColumnSet": ["Price"], "Transformers": ["Normalizer"]}},
          {{"ColumnSet": ["Time"], "Transformers": ["NumericPassthrough"]}},
          {{"ColumnSet": ["Expenses"], "Transformers": ["DateTimeVectorizer"]}}
        ]'
        SETTINGS (S3_BUCKET 'your-bucket', MAX_RUNTIME 4, S3_GARBAGE_COLLECT OFF)""",
    # AUTO OFF XGBoost, as in the Redshift abalone example.
    "credit_xgb_off": f"""
        CREATE MODEL credit_xgb_off
        FROM (SELECT {CREDIT_NUMERIC}, Status FROM credit WHERE split = 'train')
        TARGET Status
        FUNCTION predict_credit_xgb_off
        IAM_ROLE default
        AUTO OFF
        MODEL_TYPE xgboost
        OBJECTIVE 'binary:logistic'
        PREPROCESSORS 'none'
        HYPERPARAMETERS DEFAULT EXCEPT (NUM_ROUND '20', MAX_DEPTH '4', ETA '0.2')
        SETTINGS (S3_BUCKET 'your-bucket', MAX_CELLS 20000)""",
    "hpc_softmax": f"""
        CREATE MODEL hpc_softmax
        FROM (SELECT {HPC_NUMERIC}, class FROM hpc WHERE split = 'train')
        TARGET class
        FUNCTION predict_hpc_softmax
        IAM_ROLE default
        AUTO OFF
        MODEL_TYPE XGBOOST
        OBJECTIVE 'multi:softmax'
        PREPROCESSORS 'none'
        HYPERPARAMETERS DEFAULT EXCEPT (NUM_ROUND '20', NUM_CLASS '4')
        SETTINGS (S3_BUCKET 'your-bucket')""",
    "diamonds_xgb_reg": f"""
        CREATE MODEL diamonds_xgb_reg
        FROM (SELECT {DIAMOND_NUMERIC}, price FROM diamonds WHERE split = 'train')
        TARGET price
        FUNCTION predict_diamonds_xgb_reg
        IAM_ROLE default
        AUTO OFF
        MODEL_TYPE XGBOOST
        OBJECTIVE 'reg:squarederror'
        HYPERPARAMETERS DEFAULT EXCEPT (NUM_ROUND '30')
        SETTINGS (S3_BUCKET 'your-bucket', MAX_CELLS 70000)""",
    "credit_hinge": f"""
        CREATE MODEL credit_hinge
        FROM (SELECT {CREDIT_NUMERIC}, Status FROM credit WHERE split = 'train')
        TARGET Status
        FUNCTION predict_credit_hinge
        AUTO OFF
        MODEL_TYPE XGBOOST
        OBJECTIVE 'binary:hinge'
        HYPERPARAMETERS DEFAULT EXCEPT (NUM_ROUND '10', TREE_METHOD 'hist')""",
    # reg:logistic needs targets in [0, 1]: a FAILED model with XGBoost's reason.
    "diamonds_bad_logistic": f"""
        CREATE MODEL diamonds_bad_logistic
        FROM (SELECT {DIAMOND_NUMERIC}, price FROM diamonds LIMIT 1000)
        TARGET price
        FUNCTION predict_diamonds_bad_logistic
        AUTO OFF
        MODEL_TYPE XGBOOST
        OBJECTIVE 'reg:logistic'
        HYPERPARAMETERS DEFAULT EXCEPT (NUM_ROUND '5')""",
    # KMEANS, as in the Redshift news clustering example.
    "hpc_clusters": f"""
        CREATE MODEL hpc_clusters
        FROM (SELECT {HPC_NUMERIC} FROM hpc)
        FUNCTION hpc_cluster
        IAM_ROLE default
        AUTO OFF
        MODEL_TYPE KMEANS
        PREPROCESSORS '[{{"ColumnSet": ["compounds", "input_fields", "iterations"],
                         "Transformers": ["StandardScaler"]}},
                        {{"ColumnSet": ["num_pending", "hour"], "Transformers": ["MinMax"]}}]'
        HYPERPARAMETERS DEFAULT EXCEPT (K '5')
        SETTINGS (S3_BUCKET 'your-bucket')""",
}


@pytest.fixture(scope="session")
def variant_models(server: RunningServer) -> Iterator[dict[str, str]]:
    with server.connect() as c:
        for sql in MODELS.values():
            c.execute(sql)
        yield {name: wait_for_state(c, name) for name in MODELS}


def show(conn: psycopg.Connection, model: str) -> dict[str, str]:
    return dict(conn.execute(f"SHOW MODEL {model}").fetchall())


def test_credit_default_f1_beats_055(conn: psycopg.Connection,
                                     variant_models: dict[str, str]) -> None:
    assert variant_models["credit_default"] == "READY"
    rows = conn.execute(f"SELECT Status, predict_credit_default({CREDIT}) FROM credit "
                        "WHERE split = 'test'").fetchall()
    truth, predicted = zip(*rows, strict=True)
    f1 = f1_score(truth, predicted, pos_label="bad")
    print(f"credit test F1 (bad) = {f1:.3f}")
    assert f1 > 0.55
    values = show(conn, "credit_default")
    assert values["Objective"] == "F1" and "validation:f1" in values


@pytest.mark.parametrize(("model", "learners", "metric"), [
    ("credit_xgb_guided", ("xgboost", "xgb_limitdepth"), "validation:auc"),
    ("credit_mlp", ("mlp",), "validation:accuracy"),
    ("diamonds_linear", ("linear_learner",), "validation:mse"),
])
def test_model_type_narrows_the_search(conn: psycopg.Connection, variant_models: dict[str, str],
                                       model: str, learners: tuple[str, ...],
                                       metric: str) -> None:
    assert variant_models[model] == "READY"
    values = show(conn, model)
    assert values["Model Type"].split(" (")[1].rstrip(")") in learners
    assert metric in values and float(values[metric]) > 0
    assert "AutoML Job Name" in values


def test_guided_predictions(conn: psycopg.Connection, variant_models: dict[str, str]) -> None:
    for fn in ("predict_credit_xgb_guided", "predict_credit_mlp"):
        acc = conn.execute(f"SELECT avg(({fn}({CREDIT}) = Status)::INT) FROM credit "
                           "WHERE split = 'test'").fetchone()
        assert acc is not None and acc[0] > 0.7, fn
    r2 = conn.execute(
        f"SELECT 1 - sum(power(price - predict_diamonds_linear({DIAMOND_NUMERIC}, cut), 2)) / "
        "sum(power(price - (SELECT avg(price) FROM diamonds), 2)) FROM diamonds "
        "WHERE split = 'test'").fetchone()
    assert r2 is not None and r2[0] > 0.8
    values = show(conn, "diamonds_linear")
    assert values["Training Rows"].endswith("(sampled to MAX_CELLS)")
    assert values["Training Rows"].startswith("3750 of ")


def test_preprocessors_travel_with_the_model(conn: psycopg.Connection, server: RunningServer,
                                             variant_models: dict[str, str]) -> None:
    assert variant_models["credit_preprocessed"] == "READY"
    acc = conn.execute(f"SELECT avg((predict_credit_preprocessed({CREDIT}) = Status)::INT) "
                       "FROM credit WHERE split = 'test'").fetchone()
    assert acc is not None and acc[0] > 0.7
    nulls = conn.execute("SELECT predict_credit_preprocessed(" + ", ".join(["NULL"] * 13) + ")"
                         ).fetchone()
    assert nulls is not None and nulls[0] in ("good", "bad")
    # S3_GARBAGE_COLLECT OFF keeps the training snapshot next to the artifact.
    snapshots = list((server.data_dir / "models" / "public" / "credit_preprocessed")
                     .glob("*/snapshot.parquet"))
    assert len(snapshots) == 1
    gone = list((server.data_dir / "models" / "public" / "credit_mlp").glob("*/snapshot.parquet"))
    assert gone == []


def test_auto_off_xgboost_binary(conn: psycopg.Connection,
                                 variant_models: dict[str, str]) -> None:
    assert variant_models["credit_xgb_off"] == "READY"
    rows = conn.execute("SHOW MODEL credit_xgb_off").fetchall()
    keys = [k for k, _ in rows]
    values = dict(rows)
    assert "Training Job Name" in keys and "AutoML Job Name" not in keys
    assert 0 <= float(values["train:error"]) < 0.3
    assert keys.index("HYPERPARAMETERS:") > keys.index("Max Runtime")
    assert values["num_round"] == "20" and values["max_depth"] == "4"
    assert values["eta"] == "0.2" and values["subsample"] == "1"
    assert values["objective"] == "binary:logistic"
    assert values["Objective"] == "binary:logistic"
    assert values["Model Type"] == "xgboost"
    labels = conn.execute(f"SELECT DISTINCT predict_credit_xgb_off({CREDIT_NUMERIC}) FROM credit"
                          ).fetchall()
    assert {r[0] for r in labels} <= {"good", "bad"} and len(labels) == 2


def test_auto_off_hinge_labels_and_failed_objective(conn: psycopg.Connection,
                                                    variant_models: dict[str, str]) -> None:
    assert variant_models["credit_hinge"] == "READY"
    values = show(conn, "credit_hinge")
    assert values["tree_method"] == "hist" and "train:error" in values
    labels = conn.execute(f"SELECT DISTINCT predict_credit_hinge({CREDIT_NUMERIC}) FROM credit"
                          ).fetchall()
    assert {r[0] for r in labels} <= {"good", "bad"}
    assert variant_models["diamonds_bad_logistic"] == "FAILED"
    values = show(conn, "diamonds_bad_logistic")
    assert "reg:logistic" in values["Failure Reason"], values["Failure Reason"]
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
        conn.execute(f"SELECT predict_diamonds_bad_logistic({DIAMOND_NUMERIC}) FROM diamonds "
                     "LIMIT 1")


def test_auto_off_xgboost_multiclass_and_regression(conn: psycopg.Connection,
                                                    variant_models: dict[str, str]) -> None:
    assert variant_models["hpc_softmax"] == "READY"
    values = show(conn, "hpc_softmax")
    assert "train:merror" in values and values["num_class"] == "4"
    acc = conn.execute(f"SELECT avg((predict_hpc_softmax({HPC_NUMERIC}) = class)::INT) "
                       "FROM hpc WHERE split = 'test'").fetchone()
    assert acc is not None and acc[0] > 0.6
    assert variant_models["diamonds_xgb_reg"] == "READY"
    values = show(conn, "diamonds_xgb_reg")
    assert float(values["train:rmse"]) < 2000
    row = conn.execute(f"SELECT predict_diamonds_xgb_reg({DIAMOND_NUMERIC}), price FROM diamonds "
                       "WHERE split = 'test' LIMIT 1").fetchone()
    assert row is not None and isinstance(row[0], int)


def test_kmeans_returns_cluster_ids(conn: psycopg.Connection,
                                    variant_models: dict[str, str]) -> None:
    assert variant_models["hpc_clusters"] == "READY"
    values = show(conn, "hpc_clusters")
    assert float(values["train:msd"]) > 0
    assert values["k"] == "5" and values["feature_dim"] == "5"
    assert values["Target Column"] == ""
    rows = conn.execute(f"SELECT hpc_cluster({HPC_NUMERIC}) AS c, count(*) FROM hpc "
                        "GROUP BY c ORDER BY c").fetchall()
    assert [r[0] for r in rows] == [0, 1, 2, 3, 4]
    assert sum(r[1] for r in rows) == 4331


ERRORS = [
    # AUTO OFF rules
    ("AUTO OFF MODEL_TYPE XGBOOST PROBLEM_TYPE BINARY_CLASSIFICATION OBJECTIVE 'binary:logistic'",
     "credit", "0A000", "PROBLEM_TYPE"),
    ("AUTO OFF MODEL_TYPE MLP", "credit", "0A000", "AUTO OFF"),
    ("AUTO OFF MODEL_TYPE XGBOOST OBJECTIVE 'binary:logistic'", "credit_all", "42804", "Home"),
    ("AUTO OFF MODEL_TYPE XGBOOST OBJECTIVE 'multi:softmax'", "credit", "22023", "NUM_CLASS"),
    ("AUTO OFF MODEL_TYPE XGBOOST OBJECTIVE 'binary:logistic' "
     "HYPERPARAMETERS DEFAULT EXCEPT (MAX_DEPTH '11')", "credit", "22023", "[0, 10]"),
    ("AUTO OFF MODEL_TYPE XGBOOST OBJECTIVE 'binary:logistic' "
     "HYPERPARAMETERS DEFAULT EXCEPT (ETA '0.05')", "credit", "22023", "ETA"),
    ("AUTO OFF MODEL_TYPE XGBOOST OBJECTIVE 'binary:logistic' "
     "HYPERPARAMETERS DEFAULT EXCEPT (SUBSAMPLE 'x')", "credit", "22023", "SUBSAMPLE"),
    ("AUTO OFF MODEL_TYPE XGBOOST OBJECTIVE 'binary:logistic' "
     "HYPERPARAMETERS DEFAULT EXCEPT (NO_SUCH '1')", "credit", "22023", "NO_SUCH"),
    ("AUTO OFF MODEL_TYPE XGBOOST OBJECTIVE 'reg:nonsense'", "credit", "22023", "reg:nonsense"),
    ("AUTO OFF MODEL_TYPE XGBOOST", "credit", "22023", "OBJECTIVE"),
    ("HYPERPARAMETERS DEFAULT EXCEPT (NUM_ROUND '5')", "credit", "0A000", "AUTO OFF"),
    ("MODEL_TYPE FORECAST", "credit", "22023", "HORIZON"),   # tests/test_forecast.py has the rest
    # KMEANS rules
    ("AUTO OFF MODEL_TYPE KMEANS", "kmeans", "22023", "K"),
    ("AUTO OFF MODEL_TYPE KMEANS HYPERPARAMETERS DEFAULT EXCEPT (K '0')", "kmeans", "22023",
     "K"),
    ("AUTO OFF MODEL_TYPE KMEANS HYPERPARAMETERS DEFAULT EXCEPT (K '3')", "credit", "0A000",
     "TARGET"),
    ("AUTO OFF MODEL_TYPE KMEANS PREPROCESSORS '[{\"ColumnSet\": [\"hour\"], "
     "\"Transformers\": [\"OneHotEncoder\"]}]' HYPERPARAMETERS DEFAULT EXCEPT (K '3')",
     "kmeans", "22023", "OneHotEncoder"),
    ("AUTO OFF MODEL_TYPE KMEANS HYPERPARAMETERS DEFAULT EXCEPT (K '3')", "kmeans_text",
     "42804", "day"),
    # PREPROCESSORS rules
    ("PREPROCESSORS '[{\"ColumnSet\": [\"Income\"], \"Transformers\": [\"Magic\"]}]'",
     "credit", "22023", "Magic"),
    ("PREPROCESSORS '[{\"ColumnSet\": [\"nope\"], \"Transformers\": [\"Imputer\"]}]'",
     "credit", "42703", "nope"),
    ("PREPROCESSORS '[{\"ColumnSet\": [\"Status\"], \"Transformers\": [\"Imputer\"]}]'",
     "credit", "22023", "target"),
    ("PREPROCESSORS '[{\"ColumnSet\": [\"Income\"], \"Transformers\": [\"Imputer\"]}, "
     "{\"ColumnSet\": [\"Income\", \"Debt\"], \"Transformers\": [\"MinMax\"]}]'",
     "credit", "22023", "one set"),
    ("PREPROCESSORS '[{\"ColumnSet\": [\"Income\"] \"Transformers\": []}]'", "credit",
     "22023", "character 27"),
]

_SOURCES = {
    "credit": f"(SELECT {CREDIT_NUMERIC}, Status FROM credit) TARGET Status",
    "credit_all": f"(SELECT {CREDIT}, Status FROM credit) TARGET Status",
    "kmeans": f"(SELECT {HPC_NUMERIC} FROM hpc)",
    "kmeans_text": f"(SELECT {HPC_NUMERIC}, day FROM hpc)",
}


@pytest.mark.parametrize(("clauses", "source", "sqlstate", "needle"), ERRORS)
def test_create_model_option_errors(conn: psycopg.Connection, clauses: str, source: str,
                                    sqlstate: str, needle: str) -> None:
    sql = f"CREATE MODEL err_model FROM {_SOURCES[source]} FUNCTION err_fn {clauses}"
    with pytest.raises(psycopg.Error) as info:
        conn.execute(sql)
    assert info.value.sqlstate == sqlstate, (sql, info.value)
    assert needle in str(info.value), (needle, str(info.value))
    assert conn.execute("SELECT 1").fetchone() == (1,)
    assert "err_model" not in [r[1] for r in conn.execute("SHOW MODEL ALL").fetchall()]


def test_missing_target_is_a_syntax_error(conn: psycopg.Connection) -> None:
    with pytest.raises(psycopg.errors.SyntaxError):
        conn.execute("CREATE MODEL err_model FROM credit FUNCTION err_fn")
    assert conn.execute("SELECT 1").fetchone() == (1,)


def test_too_many_features_and_unsupported_types(conn: psycopg.Connection) -> None:
    wide = ", ".join(f"Amount + {i} AS c{i}" for i in range(257))
    with pytest.raises(psycopg.errors.DataException):
        conn.execute(f"CREATE MODEL err_model FROM (SELECT {wide}, Status FROM credit) "
                     "TARGET Status FUNCTION err_fn")
    with pytest.raises(psycopg.errors.DatatypeMismatch):
        conn.execute("CREATE MODEL err_model FROM (SELECT Amount, [Amount] AS l, Status "
                     "FROM credit) TARGET Status FUNCTION err_fn")
    with pytest.raises(psycopg.errors.DatatypeMismatch):
        conn.execute("CREATE MODEL err_model FROM (SELECT Amount, Status::DATE AS d FROM "
                     "(SELECT Amount, '2020-01-01' AS Status FROM credit)) TARGET d "
                     "FUNCTION err_fn")
    assert conn.execute("SELECT 1").fetchone() == (1,)


def test_explain_model(conn: psycopg.Connection, variant_models: dict[str, str]) -> None:
    for model, features in (("credit_default", CREDIT), ("credit_mlp", CREDIT),
                            ("credit_xgb_off", CREDIT_NUMERIC),
                            ("hpc_clusters", HPC_NUMERIC)):
        row = conn.execute(f"SELECT EXPLAIN_MODEL('public.{model}')").fetchone()
        assert row is not None
        document = json.loads(row[0])
        assert document["version"] == "1.0"
        label0 = document["explanations"]["kernel_shap"]["label0"]
        names = [f.strip() for f in features.split(",")]
        assert list(label0["global_shap_values"]) == names
        assert all(v >= 0 for v in label0["global_shap_values"].values())
        assert any(v > 0 for v in label0["global_shap_values"].values())
        assert isinstance(label0["expected_value"], float)
    with pytest.raises(psycopg.errors.UndefinedObject):
        conn.execute("SELECT explain_model('public.no_such_model')")
    assert conn.execute("SELECT 1").fetchone() == (1,)


def test_explain_model_while_training(conn: psycopg.Connection) -> None:
    conn.execute("CREATE MODEL explain_wait FROM (SELECT carat, cut, price FROM diamonds) "
                 "TARGET price FUNCTION explain_wait_f SETTINGS (MAX_RUNTIME 60)")
    try:
        row = conn.execute("SELECT explain_model('explain_wait')").fetchone()
        assert row is not None
        assert json.loads(row[0]) == {"explanations": "waiting for training job to complete"}
        state = conn.execute("SELECT model_state FROM stv_ml_model_info "
                             "WHERE model_name = 'explain_wait'").fetchone()
        assert state == ("Training",)
    finally:
        conn.execute("DROP MODEL explain_wait")


def test_ml_views(conn: psycopg.Connection, variant_models: dict[str, str]) -> None:
    cur = conn.execute("SELECT * FROM svv_ml_model_info WHERE model_name = 'credit_mlp'")
    assert [d.name for d in cur.description] == [
        "database_name", "schema_name", "user_name", "model_name", "life_cycle",
        "is_refreshable", "model_state"]
    rows = cur.fetchall()
    database = conn.execute("SELECT current_database()").fetchone()
    assert database is not None
    assert rows == [(database[0], "public", "tester", "credit_mlp", "ACTIVE", False,
                     "Model is Ready")]
    cur = conn.execute("SELECT * FROM stv_ml_model_info LIMIT 0")
    assert [d.name for d in cur.description] == [
        "schema_name", "user_name", "model_name", "life_cycle", "is_refreshable",
        "model_state"]
    joined = conn.execute(
        "SELECT count(*) FROM svv_ml_model_info i JOIN stv_ml_model_info s "
        "USING (schema_name, model_name) WHERE i.model_name IN ("
        + ", ".join(f"'{m}'" for m in MODELS) + ")").fetchone()
    assert joined == (len(MODELS),)
    cur = conn.execute("SELECT * FROM svv_ml_model_privileges")
    assert [d.name for d in cur.description] == [
        "namespace_name", "model_name", "model_version", "privilege_type", "identity_id",
        "identity_name", "identity_type", "admin_option"]
