"""From an artifact to fast predictions. Imports ``catalog``, never ``automl``.

- :mod:`inference.functions`: the prediction functions registered in DuckDB
  (vectorized Arrow UDFs);
- :mod:`inference.cache`: one model cache per server (load once, compile in
  the background, invalidate on DROP / replace, LRU under a byte bound);
- :mod:`inference.evaluators`: the library evaluator and the pylignum tree
  evaluator, both answering as ``ModelArtifact.predict_frame`` does;
- :mod:`inference.procpool`: the scoring pool, worker processes that run the
  library's predict for scikit-learn models (which hold the GIL);
- :mod:`inference.compiled`: compiling trees to native code, stored and
  checksummed beside the artifact, verified bit for bit against the library;
- :mod:`inference.inputs`: the evaluator input built from the Arrow arguments
  without pandas (categorical codes, NULLs, unseen values).
"""
