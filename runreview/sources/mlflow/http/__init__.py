"""An MLflow tracking server over HTTP(S): the client, bounded calls, bulk history."""
