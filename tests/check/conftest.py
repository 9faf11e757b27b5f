"""Pytest settings for the checker's tests."""

# The corpus is code for the checker to read, never to run: its test modules included.
collect_ignore = ["corpus"]
