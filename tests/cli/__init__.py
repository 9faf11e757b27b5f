"""Tests of the stream-scaffold command line."""
