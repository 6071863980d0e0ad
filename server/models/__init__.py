"""The model statements: CREATE MODEL (create.py), SHOW MODEL (show.py), DROP MODEL and
the rest of a model's life (lifecycle.py), EXPLAIN_MODEL (explain.py).

The session classifies a statement once and hands a model statement to
:class:`server.models.statements.ModelStatements` with a :class:`Caller`: the
user, their cursor and their privilege checker, never the session itself.
Where a model's files live is :mod:`catalog.files`'s business alone.
"""
