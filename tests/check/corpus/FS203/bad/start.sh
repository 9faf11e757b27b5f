#!/bin/sh
set -e
exec python -m gunicorn -k gevent --timeout=3600 app:app
