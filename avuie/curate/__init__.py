"""Edits of finished builds: rewrite chains in place (rewrite.py), the human review round trip (review.py)."""
