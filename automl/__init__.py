"""QuackML training: from a Parquet training snapshot to a fitted model artifact.

The public surface is small: :func:`automl.train.train` runs one job in the
current process, :func:`automl.worker.run_job` is the entry point of a worker
process, :func:`automl.worker.read_result` reads back what the worker
reported, and :mod:`automl.progress` reads and writes the progress file shown
by SHOW MODEL. This package imports ``catalog`` and never ``server`` or
``inference``; the artifacts it writes hold only ``catalog`` wrappers and
learner-library estimators, stored without pickle (see catalog.formats), so
they load without importing ``automl``.
"""

from __future__ import annotations

__all__ = ["errors", "problem", "progress", "train", "worker"]
