"""Exports to other trainers' formats: registry.py (formats, dispatch), common.py (shared helpers), one module
per format (crab.py, hf.py, sharegpt.py)."""
