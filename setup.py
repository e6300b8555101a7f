"""Build fastasha's compiled parts from ``src/``.

``fastasha._rungs`` (``src/_rungs.pyx``) is the rung core;
``fastasha._fastpath`` (``src/_fastpath.pyx``) is the per-report hot path of
a trial process.

Set ``FASTASHA_CYTHON_DEBUG=1`` to build with bounds checking and
wrap-around turned back on (CI runs the tests once with that build).
"""

import os

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("FASTASHA_CYTHON_DEBUG", "") not in ("", "0")

directives = {
    "language_level": "3",
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "cdivision": not DEBUG,
    "initializedcheck": DEBUG,
    "embedsignature": True,
}

extensions = [
    Extension(
        "fastasha._rungs",
        ["src/_rungs.pyx"],
        extra_compile_args=["-O0", "-g"] if DEBUG else ["-O3"],
    ),
    Extension(
        "fastasha._fastpath",
        ["src/_fastpath.pyx"],
        extra_compile_args=["-O0", "-g"] if DEBUG else ["-O3"],
    ),
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives))
