"""How the native multiscalar backend is chosen, built and reported (docs/privacy.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPS = ROOT / "privacy" / "msm" / "native_deps.sh"


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_environment_can_force_the_libsodium_backend() -> None:
    done = _python(
        "from privacy import msm; print(msm.backend_name())", VEIL_MSM_BACKEND="libsodium"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "libsodium"


def test_an_unknown_forced_backend_fails_at_import() -> None:
    done = _python("import privacy.msm", VEIL_MSM_BACKEND="wasm")
    assert done.returncode != 0
    assert "VEIL_MSM_BACKEND='wasm'" in done.stderr


def test_forcing_native_without_it_fails_loudly_and_the_default_falls_back() -> None:
    hide = "import sys; sys.modules['privacy.msm._native'] = None\n"
    forced = _python(hide + "import privacy.msm", VEIL_MSM_BACKEND="native")
    assert forced.returncode != 0
    assert "VEIL_MSM_BACKEND=native, but the native backend is not: not built" in forced.stderr
    default = _python(
        hide + "from privacy import msm\nprint(msm.backend_name(), msm.available_backends())",
        VEIL_MSM_BACKEND="",
    )
    assert default.returncode == 0, default.stderr
    assert default.stdout.strip() == "libsodium ('libsodium',)"


def test_missing_libdecaf_without_apt_is_one_line_naming_the_fix(tmp_path: Path) -> None:
    done = subprocess.run(
        ["bash", str(DEPS), sys.executable],
        env={
            **os.environ,
            "VEIL_MSM_DECAF_HEADER": str(tmp_path / "absent.h"),
            "VEIL_MSM_NO_APT": "1",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2  # the Makefile goes on with the libsodium backend
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    assert "slower libsodium multiscalar backend is in use" in lines[0]
    assert "apt-get install libdecaf-dev" in lines[0]


def test_present_dependencies_say_nothing() -> None:
    if not Path("/usr/include/decaf/decaf/point_255.h").is_file():
        pytest.skip("libdecaf-dev is not installed here")
    done = subprocess.run(
        ["bash", str(DEPS), sys.executable], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout) == (0, "")


def test_rebuilding_while_the_module_is_loaded_keeps_the_process_alive() -> None:
    """``make install`` runs the build in a process that has imported privacy.msm (and so
    mapped the old extension); writing the new one in place crashed it (SIGSEGV)."""
    if not Path("/usr/include/decaf/decaf/point_255.h").is_file():
        pytest.skip("libdecaf-dev is not installed here")
    code = (
        "from privacy import msm\n"
        "from privacy.msm import build\n"
        "from privacy.group import BASEPOINT\n"
        "assert msm.backend_name() == 'native'\n"
        "assert build.main() == 0\n"
        "print(msm.multiscalar_mul([2], [BASEPOINT]).hex())\n"
    )
    done = _python(code, VEIL_MSM_BACKEND="native")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == (
        "6a493210f7499cd17fecb510ae0cea23a110e8d5b901f8acadd3095c73a3b919"  # RFC 9496: 2·B
    )
