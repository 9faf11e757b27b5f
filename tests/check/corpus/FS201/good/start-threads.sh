#!/bin/sh
exec gunicorn -c gunicorn_threads.py
