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


class ArtifactOutdated(CatalogError):
    """An artifact in a format this server no longer reads (a pickle from an earlier
    version): the model has to be trained again."""

    sqlstate = "55000"  # object_not_in_prerequisite_state


class ModelFileMissing(CatalogError):
    """CREATE MODEL ... FROM 'model file' names a file the server cannot read."""

    sqlstate = "58P01"  # undefined_file


class UnknownType(CatalogError):
    """A FUNCTION argument type or RETURNS type DuckDB does not know."""

    sqlstate = "42704"  # undefined_object


class ImportedModelError(CatalogError):
    """A bring-your-own model file cannot be read as a booster of a supported library."""

    sqlstate = "22023"  # invalid_parameter_value


class ImportedModelMismatch(CatalogError):
    """An imported model's input or output types do not fit FUNCTION or RETURNS."""

    sqlstate = "42804"  # datatype_mismatch


class ImportedModelNullInput(CatalogError):
    """A NULL argument for an imported model input that has no missing value (an
    integer or boolean ONNX input)."""

    sqlstate = "22004"  # null_value_not_allowed


class RemoteModelError(CatalogError):
    """A remote model's endpoint failed or answered something other than one value per row."""

    sqlstate = "58000"  # system_error


class UnknownRelation(CatalogError):
    """A name cast to regclass that names no table, view or index."""

    sqlstate = "42P01"  # undefined_table


class UnknownFunction(CatalogError):
    """A name cast to regproc that names no function."""

    sqlstate = "42883"  # undefined_function


class UnknownSchema(CatalogError):
    """A schema named that does not exist (a cast to regnamespace, CREATE MODEL s.m)."""

    sqlstate = "3F000"  # invalid_schema_name
