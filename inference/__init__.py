"""From an artifact to fast predictions: the model cache and the prediction
functions registered in DuckDB. Imports ``catalog``, never ``automl``."""
