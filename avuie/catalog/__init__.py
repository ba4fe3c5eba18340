"""The catalog of finished builds: DuckDB views over manifests (db.py) and the stats report (report.py)."""
