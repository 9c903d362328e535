"""The `veil` console script: version, help and key files."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from client.cli import cli
from devnet.cli import devnet_cli


def test_version_and_help() -> None:
    runner = CliRunner()
    version = runner.invoke(cli, ["--version"])
    assert version.exit_code == 0 and version.output.startswith("veil, version ")
    help_out = runner.invoke(cli, ["--help"])
    assert help_out.exit_code == 0 and "Usage:" in help_out.output and "keys" in help_out.output


def test_installed_console_script_runs() -> None:
    exe = shutil.which("veil") or str(Path(sys.executable).parent / "veil")
    done = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("veil, version 0.1.0")


def test_keys_new_and_show(tmp_path: Path) -> None:
    runner = CliRunner()
    path = tmp_path / "k.json"
    made = runner.invoke(cli, ["keys", "new", str(path)])
    assert made.exit_code == 0, made.output
    shown = runner.invoke(cli, ["keys", "show", str(path)])
    assert shown.output == made.output and len(made.output.strip()) == 64
    again = runner.invoke(cli, ["keys", "new", str(path)])
    assert again.exit_code != 0 and "refusing to overwrite" in again.output


def test_devnet_commands_on_a_missing_devnet_are_one_line_errors(tmp_path: Path) -> None:
    """The devnet is built now (issue 10); without one, each command says so in one line."""
    runner = CliRunner()
    for args in (["down"], ["kill", "0"], ["start", "0"], ["logs", "0"]):
        result = runner.invoke(devnet_cli, [*args, "--dir", str(tmp_path / "none")])
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
