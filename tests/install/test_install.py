"""`cmake --install` of a build tree (docs/operations.md, "Installing"): the binary, the C++ SDK's
headers and archive, and a CMake package that a project outside the tree finds with
find_package(Yardmaster) and links; `--strip` gives a binary without symbols.

Needs the build directory (YM_BUILD_DIR, built), cmake (YM_CMAKE) and the compiler and flags
of that build (YM_CXX, YM_CMAKE_GENERATOR, YM_CONSUMER_LDFLAGS); tests/CMakeLists.txt sets them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import List

import pytest
from ymtest import Server

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("YM_BUILD_DIR", "")
CMAKE = os.environ.get("YM_CMAKE") or shutil.which("cmake") or "cmake"

pytestmark = pytest.mark.skipif(not BUILD, reason="YM_BUILD_DIR is not set (run through ctest)")


def run(args: List[str], timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    assert p.returncode == 0, f"{args} exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
    return p


def sections(path: str) -> List[str]:
    """The ELF section names of a file (readelf from binutils, which the compiler needs)."""
    out = run(["readelf", "-S", "-W", path]).stdout
    return [line.split("]", 1)[1].split()[0] for line in out.splitlines()
            if line.strip().startswith("[") and "]" in line and line.split("]", 1)[1].strip()]


def build_version() -> dict:
    p = run([os.path.join(BUILD, "yardmaster"), "version", "--json"])
    return json.loads(p.stdout)


def test_install_gives_a_binary_the_headers_and_a_package_a_project_can_use(tmp_path):
    prefix = tmp_path / "prefix"
    run([CMAKE, "--install", BUILD, "--prefix", str(prefix)])
    for f in ["bin/yardmaster", "include/yardmaster/client.h", "include/yardmaster/worker.h",
              "include/yardmaster/status.h", "include/yardmaster/version.h",
              "lib/libyardmaster.a", "lib/cmake/Yardmaster/YardmasterConfig.cmake",
              "lib/cmake/Yardmaster/YardmasterConfigVersion.cmake",
              "lib/cmake/Yardmaster/YardmasterTargets.cmake"]:
        assert (prefix / f).is_file(), f
    # Nothing internal leaks into the include directory.
    assert sorted(os.listdir(prefix / "include")) == ["yardmaster"]
    installed = str(prefix / "bin" / "yardmaster")
    v = build_version()
    assert json.loads(run([installed, "version", "--json"]).stdout) == v

    # A project outside the tree, configured against the prefix only.
    build = tmp_path / "consumer-build"
    configure = [CMAKE, "-S", os.path.join(HERE, "consumer"), "-B", str(build),
                 f"-DCMAKE_PREFIX_PATH={prefix}", "-DCMAKE_BUILD_TYPE=Release"]
    if os.environ.get("YM_CMAKE_GENERATOR"):
        configure += ["-G", os.environ["YM_CMAKE_GENERATOR"]]
    if os.environ.get("YM_CXX"):
        configure.append(f"-DCMAKE_CXX_COMPILER={os.environ['YM_CXX']}")
    if os.environ.get("YM_CONSUMER_LDFLAGS"):
        # A sanitizer or coverage build's archive needs its runtime at link time.
        configure.append(f"-DCMAKE_EXE_LINKER_FLAGS={os.environ['YM_CONSUMER_LDFLAGS']}")
    run(configure)
    run([CMAKE, "--build", str(build)])
    consumer = str(build / "consumer")
    assert run([consumer, "--version"]).stdout == v["version"] + "\n"

    # It works against the installed server: enqueue, run the job in its worker, read it back.
    server = Server(str(tmp_path / "data"), ["--retention-succeeded-ms", "3600000"])
    env_bin = os.environ.get("YM_BIN")
    os.environ["YM_BIN"] = installed
    try:
        server.start()
    finally:
        if env_bin is None:
            del os.environ["YM_BIN"]
        else:
            os.environ["YM_BIN"] = env_bin
    try:
        assert run([consumer, server.url()], timeout=120).stdout == "succeeded 42\n"
    finally:
        server.kill()


def test_install_strip_removes_the_symbols(tmp_path):
    plain, stripped = tmp_path / "plain", tmp_path / "stripped"
    run([CMAKE, "--install", BUILD, "--prefix", str(plain)])
    run([CMAKE, "--install", BUILD, "--prefix", str(stripped), "--strip"])
    big, small = plain / "bin" / "yardmaster", stripped / "bin" / "yardmaster"
    assert ".symtab" not in sections(str(small))
    assert not [s for s in sections(str(small)) if s.startswith(".debug")]
    assert small.stat().st_size <= big.stat().st_size
    assert json.loads(run([str(small), "version", "--json"]).stdout) == build_version()
