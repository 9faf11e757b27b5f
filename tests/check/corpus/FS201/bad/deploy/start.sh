#!/bin/sh
# Run from the project's root.
set -e
exec gunicorn -c deploy/gunicorn_prod.py
