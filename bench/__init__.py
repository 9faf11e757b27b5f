"""Benchmarks of flask-stream-scaffold: the scaffolder and the projects it generates.

Run ``python -m bench --help``. Nothing here is part of the test suite: the figures depend on
the machine, so they are printed with its description and never asserted.
"""
