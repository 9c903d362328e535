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

CDEF = """
typedef struct veil_msm_table veil_msm_table;
#define VEIL_MSM_OK 0
#define VEIL_MSM_INVALID_POINT 1
#define VEIL_MSM_NO_MEMORY 2
#define VEIL_MSM_BAD_TABLE 3
veil_msm_table *veil_msm_table_new(const uint8_t *encodings, size_t count, size_t *bad_index);
void veil_msm_table_free(veil_msm_table *table);
size_t veil_msm_table_count(const veil_msm_table *table);
int veil_point_is_valid(const uint8_t encoding[32]);
int veil_msm_self_test(void);
int veil_msm_window_plan(size_t n, int bits, int *windows);
int veil_msm(uint8_t out[32], const uint8_t *scalars, const uint8_t *points, size_t count,
             const veil_msm_table *table, const uint8_t *table_scalars, size_t table_count,
             size_t *bad_index);
typedef struct veil_scalars veil_scalars;
veil_scalars *veil_scalars_new(size_t count);
void veil_scalars_free(veil_scalars *vector);
int veil_scalars_add_products(veil_scalars *vector, size_t first, size_t stride, int low_bits,
                              const uint8_t *seed, const uint8_t *factors, int rounds);
int veil_scalars_add_constant(veil_scalars *vector, size_t first, size_t count,
                              const uint8_t *value);
void veil_scalars_encode(const veil_scalars *vector, uint8_t *out);
#define VEIL_SIG_VALID 0
#define VEIL_SIG_INVALID 1
#define VEIL_SIG_NO_MEMORY 2
int veil_ed25519_verify_batch(const uint8_t *signatures, const uint8_t *keys,
                              const uint8_t *messages, const size_t *ends, size_t count,
                              const uint8_t *weights, size_t *bad_index);
int veil_ed25519_self_test(void);
int veil_ed25519_verify_one(const uint8_t signature[64], const uint8_t key[32],
                            const uint8_t *message, size_t length);
"""


def header_present() -> bool:
    return DECAF_HEADER.is_file()


def build() -> Path:
    """Compile the extension and return its path; raises on any build failure."""
    ffibuilder = FFI()
    ffibuilder.cdef(CDEF)
    ffibuilder.set_source(
        MODULE,
        '#include "veil_msm.h"\n#include "veil_ed25519.h"',
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
