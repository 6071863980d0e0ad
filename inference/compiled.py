"""Tree models compiled to native code with pylignum, cached beside the artifact.

For an artifact ``artifact.json`` the compiled form is three files in the same
folder: ``artifact.json.lignum.bin`` (pylignum's model), ``artifact.json.lignum.so``
(the trees as native code) and ``artifact.json.lignum.json``, the manifest,
written last. The manifest names the artifact's sha256, the pylignum
version and the sha256 of the other two files.

Invariants:

- a model is compiled once: after a restart the manifest is found and the
  compiled files are loaded, never rebuilt (unless the artifact, pylignum or
  a file changed);
- nothing is loaded (and no native code is run) unless the manifest matches
  the artifact the catalog vouches for and both files match their sha256;
- every file is written atomically (temp file, fsync, rename); the manifest
  last, so a crash mid-way leaves no manifest and the next load compiles;
- an evaluator is used only after it reproduced the library's predictions
  bit for bit on a probe batch (:func:`verify`); otherwise the caller falls
  back to the library.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from catalog.artifact import ModelArtifact
from catalog.files import publish
from catalog.imported import ImportedBooster
from catalog.spec import FeatureKind
from inference.errors import CompilationFailed
from inference.evaluators import LibraryEvaluator, TreeEvaluator, tree_library

log = logging.getLogger("quackml.inference")

MANIFEST_VERSION = 1
PROBE_ROWS = 512


def lignum_module() -> Any:
    """The pylignum module, or None when it is not installed."""
    try:
        import lignum
    except ImportError:
        return None
    return lignum


@dataclass(frozen=True)
class CompiledPaths:
    manifest: Path
    model: Path
    library: Path

    @classmethod
    def beside(cls, artifact_path: str | os.PathLike[str]) -> CompiledPaths:
        base = os.fspath(artifact_path)
        return cls(Path(base + ".lignum.json"), Path(base + ".lignum.bin"),
                   Path(base + ".lignum.so"))


def load_cached(artifact: ModelArtifact, artifact_path: str,
                artifact_sha256: str) -> TreeEvaluator | None:
    """The compiled evaluator from the files beside the artifact, when they are there,
    belong to this artifact and pylignum version, and match their checksums."""
    lignum = lignum_module()
    library = tree_library(artifact)
    if lignum is None or library is None:
        return None
    paths = CompiledPaths.beside(artifact_path)
    try:
        manifest = json.loads(paths.manifest.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable compiled-model manifest %s: %s", paths.manifest, exc)
        return None
    expected = {"version": MANIFEST_VERSION, "artifact_sha256": artifact_sha256.lower(),
                "lignum_version": lignum.__version__, "model_file": paths.model.name,
                "library_file": paths.library.name}
    if any(manifest.get(k) != v for k, v in expected.items()):
        log.info("compiled model %s is stale; compiling again", paths.manifest)
        return None
    for path, key in ((paths.model, "model_sha256"), (paths.library, "library_sha256")):
        actual = _sha256(path)
        if actual is None or actual != manifest.get(key):
            log.warning("compiled model file %s is missing or failed its checksum; "
                        "compiling again", path)
            return None
    model = lignum.load(str(paths.model), compiled=str(paths.library))
    evaluator = TreeEvaluator(artifact, model, library)
    verify(artifact, evaluator)
    return evaluator


def interpreter(artifact: ModelArtifact) -> TreeEvaluator | None:
    """pylignum's interpreter for the model (no compiler needed), or None."""
    lignum = lignum_module()
    library = tree_library(artifact)
    if lignum is None or library is None:
        return None
    with tempfile.TemporaryDirectory(prefix="quackml-lignum-") as tmp:
        model = lignum.load(_export(artifact, library, Path(tmp)))
    evaluator = TreeEvaluator(artifact, model, library)
    verify(artifact, evaluator)
    return evaluator


def compile_and_store(artifact: ModelArtifact, artifact_path: str, artifact_sha256: str,
                      compiler: str = "auto") -> TreeEvaluator:
    """Compile the trees, verify the result, store the files beside the artifact."""
    lignum = lignum_module()
    library = tree_library(artifact)
    if lignum is None or library is None:
        raise CompilationFailed("pylignum cannot compile this model")
    paths = CompiledPaths.beside(artifact_path)
    folder = paths.manifest.parent
    work = Path(tempfile.mkdtemp(prefix=".lignum-", dir=folder))
    try:
        model = lignum.load(_export(artifact, library, work))
        tmp_library = work / paths.library.name
        try:
            model.compile(compiler=compiler, work_dir=str(work / "build"),
                          library=str(tmp_library))
        except RuntimeError as exc:
            raise CompilationFailed(f"compiling the trees failed: {exc}") from exc
        evaluator = TreeEvaluator(artifact, model, library)
        verify(artifact, evaluator)
        tmp_model = work / paths.model.name
        model.save(str(tmp_model))
        for tmp, final in ((tmp_model, paths.model), (tmp_library, paths.library)):
            publish(tmp, final)
        manifest = {"version": MANIFEST_VERSION, "artifact_sha256": artifact_sha256.lower(),
                    "lignum_version": lignum.__version__, "model_file": paths.model.name,
                    "model_sha256": _sha256(paths.model), "library_file": paths.library.name,
                    "library_sha256": _sha256(paths.library)}
        tmp_manifest = work / paths.manifest.name
        tmp_manifest.write_text(json.dumps(manifest, indent=1))
        publish(tmp_manifest, paths.manifest)
        return evaluator
    finally:
        shutil.rmtree(work, ignore_errors=True)


def verify(artifact: ModelArtifact, evaluator: TreeEvaluator) -> None:
    """Raise CompilationFailed unless the evaluator gives the library's scores bit for bit
    on a probe batch (numbers across magnitudes, NULLs, known and unseen categories)."""
    args = probe_arguments(artifact)
    ours = evaluator.scores(args)
    theirs = LibraryEvaluator(artifact).scores(args)
    if ours.shape != theirs.shape or not np.array_equal(ours, theirs, equal_nan=True):
        raise CompilationFailed("the compiled model does not reproduce the library's predictions")


def probe_arguments(artifact: ModelArtifact, rows: int = PROBE_ROWS,
                    seed: int = 0) -> list[pa.Array]:
    rng = np.random.default_rng(seed)
    args: list[pa.Array] = []
    for feature, cats in zip(artifact.features, artifact.categories, strict=True):
        missing = rng.random(rows) < 0.1
        if feature.kind is FeatureKind.CATEGORICAL:
            pool = [*(cats or ()), "\x00unseen"]
            picked = [None if m else pool[int(rng.integers(len(pool)))] for m in missing]
            args.append(pa.array(picked, type=pa.string()))
        elif feature.kind is FeatureKind.TEMPORAL:
            micros = rng.integers(0, 2_000_000_000_000_000, rows)
            args.append(pa.array(micros, type=pa.timestamp("us"), mask=missing))
        elif feature.kind is FeatureKind.BOOLEAN:
            args.append(pa.array(rng.random(rows) < 0.5, mask=missing))
        else:
            scale = 10.0 ** rng.integers(-2, 6, rows)
            values = np.where(rng.random(rows) < 0.3, rng.integers(-2, 12, rows),
                              rng.normal(size=rows) * scale)
            args.append(pa.array(values, type=pa.float64(), mask=missing))
    return args


def _export(artifact: ModelArtifact, library: str, folder: Path) -> str:
    """Write the estimator's trees in the library's own format; return the path."""
    estimator = artifact.estimator
    if isinstance(estimator, ImportedBooster):
        # The imported file's own bytes (checked by the artifact's sha256); pylignum tells
        # XGBoost JSON from UBJ by the bytes.
        path = folder / ("model.txt" if library == "lightgbm" else "model.xgb")
        path.write_bytes(estimator.data)
        return str(path)
    if library == "lightgbm":
        path = folder / "model.txt"
        path.write_text(artifact.estimator.booster_.model_to_string())
    else:
        path = folder / "model.json"
        artifact.estimator.get_booster().save_model(str(path))
    return str(path)


def _sha256(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except FileNotFoundError:
        return None
    return digest.hexdigest()


def stored_bytes(artifact_path: str) -> int:
    """Bytes of the compiled files beside the artifact (0 when there are none)."""
    paths = CompiledPaths.beside(artifact_path)
    return sum(p.stat().st_size for p in (paths.model, paths.library) if p.exists())
