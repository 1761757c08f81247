"""Optional C accelerator for the classifier's analysis loop (processors/_fast.c).

All metadata lives in pyproject.toml; this file only declares the extension. ``optional=True``: without a C
compiler or Python headers (e.g. python:3.11-slim) the build skips it and the pure-Python path is used.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("processors._fast", ["processors/_fast.c"], optional=True)])
