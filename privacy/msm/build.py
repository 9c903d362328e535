"""Build the native multiscalar backend: ``python -m privacy.msm.build``.

Compiles ``veil_msm.c`` (with ``veil_field.h``), ``veil_scalars.c`` and
``veil_ed25519.c`` (signatures in batches) against
libdecaf with cffi in API mode and puts the extension module
``privacy/msm/_native*.so`` next to this file. ``make install`` runs it once,
right after pip, so a build error shows at install time, with the compiler's
own output, instead of on first use. Exit status: 0 built, 1 the build failed
(never silent), 2 libdecaf's header is missing (the caller falls back to the
libsodium backend and says so in one line).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
MODULE = "_native"
DECAF_HEADER = Path("/usr/include/decaf/decaf/point_255.h")
HINT = "install libdecaf-dev and a C compiler (apt-get install libdecaf-dev gcc), then make install"

HEADERS = ("veil_msm.h", "veil_ed25519.h")
_PREPROCESSOR_ONLY = ("#ifndef", "#endif", "#include")


def header_cdef(name: str) -> str:
    """The header's declarations as cffi's ``cdef`` takes them: the headers stay
    the one place the C interface is written. cffi reads ``#define NAME value``
    and strips comments, but not include guards or includes."""
    guard = "#define " + name.upper().replace(".", "_")
    lines = (HERE / name).read_text().splitlines()
    return "\n".join(
        line for line in lines if not line.startswith(_PREPROCESSOR_ONLY) and line.strip() != guard
    )


def header_present() -> bool:
    return DECAF_HEADER.is_file()


def build() -> Path:
    """Compile the extension and return its path; raises on any build failure."""
    ffibuilder = FFI()
    ffibuilder.cdef("\n".join(header_cdef(name) for name in HEADERS))
    ffibuilder.set_source(
        MODULE,
        "\n".join(f'#include "{name}"' for name in HEADERS),
        sources=[str(HERE / name) for name in ("veil_msm.c", "veil_scalars.c", "veil_ed25519.c")],
        include_dirs=[str(HERE), str(DECAF_HEADER.parent.parent)],
        libraries=["decaf", "m"],
        extra_compile_args=["-O3", "-Wall", "-Wextra", "-Werror"],
    )
    with tempfile.TemporaryDirectory(prefix="veil-msm-build-") as tmp:
        built = Path(ffibuilder.compile(tmpdir=tmp, verbose=False))
        target = HERE / built.name
        # Copy, then rename over the old module: a process that has the old
        # one loaded (this one, through privacy.msm) keeps its mapped file.
        staging = HERE / f".{built.name}.tmp"
        shutil.copyfile(built, staging)
        os.replace(staging, target)
    return target


def main() -> int:
    if not header_present():
        print(f"privacy.msm: {DECAF_HEADER} not found; {HINT}", file=sys.stderr)
        return 2
    try:
        target = build()
    except Exception as err:  # the compiler's message, not a silent fallback
        print(f"privacy.msm: building the native backend FAILED: {err}", file=sys.stderr)
        return 1
    print(f"privacy.msm: built the native backend {target.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
