"""Catalog errors. Each class carries the SQLSTATE the server reports."""

from __future__ import annotations


class CatalogError(Exception):
    """Base class: a catalog-level error with a SQLSTATE."""

    sqlstate = "XX000"

    def __init__(self, message: str, *, detail: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.hint = hint


class ModelNotFound(CatalogError):
    sqlstate = "42704"  # undefined_object


class DuplicateModel(CatalogError):
    sqlstate = "42710"  # duplicate_object


class DuplicateFunction(CatalogError):
    sqlstate = "42723"  # duplicate_function


class ModelNotReady(CatalogError):
    sqlstate = "55000"  # object_not_in_prerequisite_state


class ArtifactCorrupt(CatalogError):
    sqlstate = "XX001"  # data_corrupted
