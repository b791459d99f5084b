# setuptools needs this file only to hand the cffi builder to the build (cffi_modules); everything
# else is in pyproject.toml.
from setuptools import setup

setup(cffi_modules=["src/libreactor/_build.py:ffibuilder"])
