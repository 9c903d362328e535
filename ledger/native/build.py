"""Build the state tree's native update: ``python -m ledger.native.build``.

Compiles ``smt_update.c`` (the walk), ``node_cache.c`` and ``node_table.c``
(its node cache) against Python's headers and OpenSSL's libcrypto
with setuptools and puts the extension module ``ledger/native/_smt*.so`` next
to this file. ``make install`` runs it, so a compiler error shows at install
time, in full. Exit status: 0 built, 1 the build failed (never silent), 2 a
header or the compiler is missing (the pure-Python tree is used, and this says
so in one line).
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

from setuptools import Distribution, Extension

HERE = Path(__file__).resolve().parent
MODULE = "_smt"
SOURCES = ("smt_update.c", "node_cache.c", "node_table.c")
OPENSSL_HEADER = Path("/usr/include/openssl/evp.h")
HINT = "apt-get install libssl-dev python3-dev gcc, then make install"


def missing_parts() -> list[str]:
    missing = []
    if not OPENSSL_HEADER.is_file():
        missing.append(str(OPENSSL_HEADER))
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").is_file():
        missing.append("Python.h")
    if shutil.which("cc") is None:
        missing.append("a C compiler (cc)")
    return missing


def build() -> Path:
    """Compile the extension and return its path; raises on any build failure."""
    extension = Extension(
        MODULE,
        sources=[str(HERE / name) for name in SOURCES],
        include_dirs=[str(HERE)],
        libraries=["crypto"],
        extra_compile_args=["-O2", "-Wall", "-Wextra", "-Werror"],
    )
    with tempfile.TemporaryDirectory(prefix="veil-smt-build-") as tmp:
        command = Distribution({"name": "veil-smt", "ext_modules": [extension]}).get_command_obj(
            "build_ext"
        )
        command.build_lib = command.build_temp = tmp
        command.ensure_finalized()
        command.run()
        built = Path(command.get_ext_fullpath(MODULE))
        target = HERE / built.name
        # Copy, then rename over the old module: a process that has the old one
        # loaded keeps its mapped file.
        staging = HERE / f".{built.name}.tmp"
        shutil.copyfile(built, staging)
        os.replace(staging, target)
    return target


def main() -> int:
    missing = missing_parts()
    if missing:
        print(
            f"ledger.native: {', '.join(missing)} missing; the pure-Python state tree "
            f"is in use; for the native one: {HINT}",
            file=sys.stderr,
        )
        return 2
    try:
        target = build()
    except Exception as err:  # the compiler's message, not a silent fallback
        print(f"ledger.native: building the state tree's update FAILED: {err}", file=sys.stderr)
        return 1
    print(f"ledger.native: built the state tree's update {target.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
