# Kept from the Python 2 version of the app: Latin-1 bytes without a coding line.
from flask import Flask


def greetings():
    yield "café"
