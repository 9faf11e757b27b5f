#!/bin/sh
# The camera's own server: started from this directory.
cd "$(dirname "$0")"
gunicorn -c web_gunicorn_config.py web_app:app
