"""The package dependency rule from DESIGN.md, enforced on every import statement."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = {"privacy", "consensus", "ledger", "node", "client", "devnet", "tests", "benchmarks"}
ALLOWED = {
    "privacy": set(),
    "consensus": set(),
    "ledger": {"privacy"},
    "node": {"consensus", "ledger", "privacy"},
    "client": {"ledger", "privacy"},
    "devnet": {"node", "client", "ledger", "privacy"},
    # Measurements may use every package (the load generator's engine is devnet.load,
    # so the chaos tool drives the same load without importing benchmarks), never tests.
    "benchmarks": {"privacy", "consensus", "ledger", "node", "client", "devnet"},
}
# The consensus core is a pure state machine: no I/O, clocks or global randomness.
CONSENSUS_FORBIDDEN = {
    "asyncio",
    "aiohttp",
    "plyvel",
    "socket",
    "time",
    "random",
    "threading",
    "datetime",
    "os",
    "secrets",
    "selectors",
    "subprocess",
}


# node/'s decision modules are sans-I/O (issue 9): bytes and time move only in
# the asyncio shells. Modules other branches add join this tuple as they land.
NODE_SANS_IO_MODULES = (
    "node/app.py",
    "node/catchup.py",
    "node/commit_rate.py",
    "node/config.py",
    "node/mempool.py",
    "node/peer_config.py",
    "node/peer_frames.py",
    "node/peer_protocol.py",
    "node/rejections.py",
    "node/wal.py",
)
NODE_SANS_IO_FORBIDDEN = {
    "asyncio",
    "aiohttp",
    "time",
    "random",
    "socket",
    "ssl",
    "secrets",
    "selectors",
    "subprocess",
    "threading",
    "datetime",
}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.extend([(node.lineno, node.module)])
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "__import__"
        ):
            found.append((node.lineno, "__import__"))
    return found


def python_files(package: str) -> list[Path]:
    files = sorted((ROOT / package).rglob("*.py"))
    if not files:  # a renamed or moved package would make every check pass vacuously
        raise AssertionError(f"no Python files under {package}/")
    return files


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_the_design_allows(package: str) -> None:
    violations = []
    for path in python_files(package):
        for line, module in imported_modules(path):
            top = module.split(".")[0]
            if top in OURS and top != package and top not in ALLOWED[package]:
                violations.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert violations == []


def test_consensus_core_has_no_io_clock_or_global_random() -> None:
    violations = []
    for path in python_files("consensus"):
        in_simulator = "sim" in path.relative_to(ROOT / "consensus").parts[:-1]
        for line, module in imported_modules(path):
            top = module.split(".")[0]
            if module == "__import__":
                violations.append(f"{path.relative_to(ROOT)}:{line} uses __import__")
            elif top in CONSENSUS_FORBIDDEN and not (in_simulator and top in {"random", "time"}):
                violations.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert violations == []


def test_consensus_does_not_import_the_signing_module() -> None:
    for path in python_files("consensus"):
        assert "identity" not in {m.split(".")[-1] for _, m in imported_modules(path)}, path


def test_node_sans_io_modules_have_no_io_clock_or_randomness() -> None:
    violations = []
    for name in NODE_SANS_IO_MODULES:
        path = ROOT / name
        if not path.is_file():  # a rename would make this check pass vacuously
            raise AssertionError(f"{name} is listed as sans-I/O but does not exist")
        for line, module in imported_modules(path):
            if module == "__import__" or module.split(".")[0] in NODE_SANS_IO_FORBIDDEN:
                violations.append(f"{name}:{line} imports {module}")
    assert violations == []


def test_the_checker_sees_violations(tmp_path: Path) -> None:
    """Guard against a checker that can never fail."""
    bad = tmp_path / "bad.py"
    bad.write_text("import time\nfrom ledger.codec import encode_value\nimport node.api\n")
    modules = {m for _, m in imported_modules(bad)}
    assert modules == {"time", "ledger.codec", "node.api"}
    assert {m.split(".")[0] for m in modules} & CONSENSUS_FORBIDDEN == {"time"}


def test_the_load_generator_engine_is_in_devnet_and_benchmarks_is_its_front_end() -> None:
    """The chaos tool must drive the generator's load (issue 12): its engine lives in
    ``devnet/load/`` and ``benchmarks.load`` imports it, not the other way round."""
    engine = {p.name for p in python_files("devnet/load")}
    assert {"run.py", "drive.py", "prepare.py", "txs.py", "cpu.py"} <= engine
    chaos_imports = {m for _, m in imported_modules(ROOT / "devnet" / "chaos_load.py")}
    assert "devnet.load.run" in chaos_imports
    front_end = {m for _, m in imported_modules(ROOT / "benchmarks" / "load.py")}
    assert "devnet.load.run" in front_end
