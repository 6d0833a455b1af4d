"""A plain checkout that is not pip-installed (`PYTHONPATH=src`) runs every command: the version comes
from package metadata, which such a checkout has none of."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT

NO_METADATA = """
import importlib.metadata as m, sys
real = m.version
def version(name):
    if name == "ladder":
        raise m.PackageNotFoundError(name)
    return real(name)
m.version = version
from ladder import cli
sys.exit(cli.main(sys.argv[1:]))
"""


def run(*argv: str) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", NO_METADATA, *argv], cwd=ROOT, env=env, capture_output=True, text=True)


def test_help_and_version_without_package_metadata():
    p = run("--version")
    assert p.returncode == 0 and p.stdout.strip() == "ladder (a source checkout, not installed)", p.stderr
    p = run("plan", "--help")
    assert p.returncode == 0 and p.stdout.startswith("usage: ladder plan"), p.stderr
