"""`make bench`: load a PostgreSQL bench database with a realistic ledger, serve the app with
gunicorn and production settings, and measure latency, throughput and query counts.

Modules: `run` (the orchestrator; its docstring explains the method), `load` (the set-based SQL
loader and the shape of the data), `cases` (each round's requests and checks, sample data),
`django_side` (steps that need Django: sessions, query counts), `baseline_app` (a minimal
Django view for comparison) and `settings` (production settings with a temporary
STATIC_ROOT)."""
