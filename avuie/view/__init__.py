"""`avuie view`: a web page to browse every sample of a build, see its frames, audio and masks, and correct its
reasoning chain in place.

- store.py: filtered, paginated queries (DuckDB over the manifests and rejects, via avuie.catalog);
- tarread.py: one sample or one member out of a shard by byte range (tables from the shard markers);
- sample_page.py, pages.py, stats_page.py, html.py: the server-rendered pages (templates/, static/);
- edits.py: the build's review file, applied through avuie.curate.review.apply_review (`avuie review apply`);
- auth.py: the token rule of `avuie serve` plus a cookie for browsers; app.py, routes.py: the app and server.
"""
