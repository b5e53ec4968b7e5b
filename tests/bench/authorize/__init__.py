"""The OCPP Authorize benchmark, in parts: settings, servers, steps, storm, report, comparison.

``tests/bench/bench_authorize.py`` runs it; ``tests/bench/README.md`` describes the
method and holds the figures.
"""
