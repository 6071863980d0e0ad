"""Estimators for bring-your-own models: an imported booster file, or a remote endpoint.

Both are held by a REGRESSION-shaped ``ModelArtifact`` whose target is the
RETURNS type: ``predict`` returns one float64 per row, which the prediction
function casts to that type.

- :class:`ImportedBooster` keeps the bytes of the XGBoost (JSON or UBJ) or
  LightGBM (text) model file the server copied into the artifact store; the
  artifact's sha256 covers them, so only a checked copy is ever scored.
- :class:`RemoteEndpoint` posts CSV rows (NULL as an empty field) to an HTTP
  URL in batches of at most ``max_batch_rows`` and reads one value per line.
"""

from __future__ import annotations

import io
import math
import urllib.error
import urllib.request
from typing import Any

import numpy as np
import pandas as pd

from catalog.errors import ImportedModelError, RemoteModelError

REMOTE_TIMEOUT_S = 60.0


def detect_library(data: bytes) -> str:
    """'xgboost' or 'lightgbm' from the file's first bytes (JSON, UBJ or LightGBM text)."""
    head = data[:256].lstrip()
    if head.startswith(b"tree\n") or head.startswith(b"tree\r\n"):
        return "lightgbm"
    if head.startswith(b"{"):
        return "xgboost"  # XGBoost JSON; UBJSON objects start with "{" as well
    raise ImportedModelError(
        "the model file is neither an XGBoost JSON/UBJ model nor a LightGBM text model")


class ImportedBooster:
    """A booster loaded from a model file's bytes; predicts from the numeric frame."""

    def __init__(self, library: str, data: bytes, n_features: int):
        self.library = library
        self.data = data
        self.n_features = n_features
        self._booster: Any = None
        self.check()

    def __getstate__(self) -> dict[str, Any]:
        return {"library": self.library, "data": self.data, "n_features": self.n_features}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._booster = None

    def _load(self) -> Any:
        if self._booster is None:
            if self.library == "lightgbm":
                import lightgbm as lgb

                self._booster = lgb.Booster(model_str=self.data.decode("utf-8"))
            else:
                import xgboost as xgb

                booster = xgb.Booster()
                booster.load_model(bytearray(self.data))
                self._booster = booster
        return self._booster

    def check(self) -> None:
        """Load the booster and check its feature count against the FUNCTION's arguments."""
        import lightgbm as lgb
        import xgboost as xgb

        try:
            booster = self._load()
        except (xgb.core.XGBoostError, lgb.basic.LightGBMError, ValueError,
                UnicodeDecodeError) as exc:
            raise ImportedModelError(
                f"the model file cannot be loaded as a {self.library} model: "
                f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
            ) from None
        expected = (booster.num_feature() if self.library == "lightgbm"
                    else booster.num_features())
        if expected != self.n_features:
            raise ImportedModelError(
                f"the model takes {expected} features; FUNCTION declares {self.n_features} "
                "argument types")

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        booster = self._load()
        values = frame.to_numpy(dtype=np.float64, na_value=np.nan)
        if self.library == "lightgbm":
            raw = booster.predict(values)
            return np.asarray(raw, dtype=np.float64).reshape(len(frame), -1)[:, 0]
        import xgboost as xgb

        out = booster.predict(xgb.DMatrix(values, missing=np.nan))
        return np.asarray(out, dtype=np.float64).reshape(len(frame), -1)[:, 0]


class RemoteEndpoint:
    """An HTTP endpoint that takes CSV rows and answers one value per line."""

    def __init__(self, url: str, max_batch_rows: int, timeout_s: float = REMOTE_TIMEOUT_S):
        self.url = url
        self.max_batch_rows = max_batch_rows
        self.timeout_s = timeout_s

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.empty(len(frame), dtype=np.float64)
        values = frame.to_numpy(dtype=np.float64, na_value=np.nan)
        step = max(1, self.max_batch_rows)
        for start in range(0, len(values), step):
            batch = values[start:start + step]
            out[start:start + len(batch)] = self._call(batch)
        return out

    def _call(self, batch: np.ndarray) -> np.ndarray:
        text = io.StringIO()
        for row in batch:
            text.write(",".join(_csv_value(float(v)) for v in row))
            text.write("\n")
        request = urllib.request.Request(self.url, data=text.getvalue().encode("utf-8"),
                                         headers={"Content-Type": "text/csv"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                body = response.read().decode("utf-8")
        except (urllib.error.URLError, OSError) as exc:
            raise RemoteModelError(f"remote model {self.url} failed: {exc}") from None
        lines = [line.strip() for line in body.strip().splitlines()]
        if len(lines) != len(batch):
            raise RemoteModelError(
                f"remote model {self.url} answered {len(lines)} values for {len(batch)} rows")
        try:
            return np.array([float(v) if v else np.nan for v in lines], dtype=np.float64)
        except ValueError:
            raise RemoteModelError(f"remote model {self.url} answered a non-numeric value") \
                from None


def _csv_value(v: float) -> str:
    if math.isnan(v):
        return ""
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return repr(v)
