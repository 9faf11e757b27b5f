# -*- coding: latin-1 -*-
# Kept from the Python 2 version of the app, with its coding line.
from flask import Flask


def greetings():
    yield "café"
