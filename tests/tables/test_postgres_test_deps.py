"""The machine set-up of the table tests: scripts/test-deps.sh, run first by the README's
test command, which CI (.ci/run) runs exactly."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "test-deps.sh"


def readme_test_command() -> str:
    lines = [line for line in (REPO / "README.md").read_text().splitlines()
             if "python3 -m pytest" in line]
    assert len(lines) == 1, lines
    return lines[0].split("#", 1)[0].strip()


def test_ci_runs_exactly_the_readme_test_command_and_it_installs_the_test_packages_first():
    command = readme_test_command()
    assert command.startswith("scripts/test-deps.sh && ")
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.startswith("#")]
    assert ci[-1] == command


def test_with_everything_present_the_script_installs_nothing_and_succeeds():
    done = subprocess.run([str(SCRIPT)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "installing" not in done.stderr  # present packages are not installed again


def test_a_package_that_cannot_be_installed_fails_the_script_naming_it():
    done = subprocess.run([str(SCRIPT), "surestream-no-such-package"], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 1
    assert "FAILED to install Debian package(s): surestream-no-such-package" in done.stderr


def test_the_fixture_server_is_postgresql_15_on_localhost_with_two_phase_commit(
        postgres_dsn: str):
    assert "@127.0.0.1:" in postgres_dsn
    with psycopg.connect(postgres_dsn) as con:
        version = con.execute("show server_version_num").fetchone()[0]
        prepared = con.execute("show max_prepared_transactions").fetchone()[0]
    assert version.startswith("15")
    assert int(prepared) > 0
