"""The Snakemake workflow passes its own linter (logs, threads, software environment, structure)."""

from conftest import sh


def test_snakemake_lint_is_clean(fresh):
    out = sh("snakemake --lint", fresh)
    assert "Congratulations, your workflow is in a good condition!" in out.stdout + out.stderr
