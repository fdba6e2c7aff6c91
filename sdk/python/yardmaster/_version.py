"""The SDK's version: the Yardmaster release it belongs to.

It must equal the ``project(... VERSION ...)`` of the repository's top-level CMakeLists.txt, the
one place a release's version is written: configuring the C++ build fails when the two differ,
and pyproject.toml reads this attribute instead of repeating the number.
"""

__version__ = "0.1.0"
