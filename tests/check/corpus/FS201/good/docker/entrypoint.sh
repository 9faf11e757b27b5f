#!/bin/sh
# The threads come from the environment, with a default of 25: a sync worker with threads is
# gthread. The configuration file only sets logging.
set -e
exec "${PYTHON_BIN}" /venv/bin/gunicorn --timeout "${TIMEOUT}" -w 1 \
    --threads "${GUNICORN_THREADS:-25}" -c gunicorn_config.py run:app
