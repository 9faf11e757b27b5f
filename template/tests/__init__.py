"""The project's tests; run them with ``python -m pytest`` from the project root."""
