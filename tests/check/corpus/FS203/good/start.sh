#!/bin/sh
set -e
exec python -m gunicorn -k gevent --timeout 30 app:app
