"""A symlink where the project writes (a lock, a log, an output) is never written through: the file it
points to, anywhere on the machine, stays as it was. Locks are refused in one line naming the link;
logs and outputs are replaced by a file of their own."""

from __future__ import annotations

import pytest
from conftest import sh
from faultlib import last_line

PRECIOUS = "a file of the user's, outside the project\n"


def victim(tmp_path):
    path = tmp_path / "victim.txt"
    path.write_text(PRECIOUS)
    return path


@pytest.mark.parametrize("lock", ["project", "tokenizer"])
def test_a_linked_lock_is_refused_and_its_target_untouched(faults_project, tmp_path, lock):
    target = victim(tmp_path)
    link = faults_project / ".ladder/locks" / lock
    link.parent.mkdir(parents=True, exist_ok=True)
    link.unlink(missing_ok=True)
    link.symlink_to(target)
    p = sh("ladder tokenizer", faults_project, check=False)
    assert p.returncode == 1, p.stderr[-2000:]
    line = last_line(p.stderr)
    assert line.endswith(f".ladder/locks/{lock}: is a symbolic link; ladder writes through no link (remove it)"), line
    assert target.read_text() == PRECIOUS


def test_a_linked_log_is_replaced_not_written_through(faults_project, tmp_path):
    target = victim(tmp_path)
    log = faults_project / ".ladder/logs/download.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)
    log.symlink_to(target)
    # the target first: --forcerun takes a list, and would take the target for a rule
    sh("snakemake --cores 1 data/raw/manifest.json --forcerun download", faults_project)
    assert target.read_text() == PRECIOUS
    assert not log.is_symlink() and "download" in log.read_text()


def test_a_linked_curves_folder_is_replaced_not_written_through(faults_project, tmp_path):
    """Training writes its curves (dvclive's files, layer_stats.tsv) afresh into results/<size>/live/."""
    (tmp_path / "victim").mkdir()
    target = tmp_path / "victim/layer_stats.tsv"
    target.write_text(PRECIOUS)
    live = faults_project / "results/tiny/live"
    sh(f"rm -rf {live}", faults_project)
    live.symlink_to(tmp_path / "victim")
    sh("ladder train --size tiny", faults_project)
    assert target.read_text() == PRECIOUS and [p.name for p in (tmp_path / "victim").iterdir()] == ["layer_stats.tsv"]
    assert not live.is_symlink() and (live / "layer_stats.tsv").read_text().startswith("tokens")
