"""The scratch folder a gather rule writes its one job into (``format_options.<format>.jobs: 1``):
beside the output, removed afterwards (failed or not), and left alone by the output's own
atomic write until it is gathered."""

from __future__ import annotations

import pytest

from trainset.provenance import atomic_path
from trainset.workflow import job_folder, remove_stale_job_folders


def test_the_scratch_folder_is_beside_the_output_and_removed_afterwards(tmp_path):
    output = tmp_path / "datasets" / "TS_X.h5"
    with job_folder(output) as folder:
        assert folder.parent.parent == output.parent and not folder.exists()
        folder.mkdir()
        (folder / "part.h5").write_bytes(b"job")
        with atomic_path(output) as tmp:  # the gather's write sweeps only its own temporaries
            tmp.write_bytes((folder / "part.h5").read_bytes())
        assert (folder / "part.h5").exists()
    assert output.read_bytes() == b"job"
    assert sorted(p.name for p in output.parent.iterdir()) == ["TS_X.h5"]


def test_a_failed_job_leaves_no_scratch_folder(tmp_path):
    output = tmp_path / "TS_X.zarr"
    with pytest.raises(RuntimeError), job_folder(output) as folder:
        folder.mkdir()
        raise RuntimeError("writer failed")
    assert list(tmp_path.iterdir()) == []


def test_the_scratch_folder_of_a_killed_job_is_removed_by_the_next(tmp_path):
    output = tmp_path / "TS_X-wds"
    stale = tmp_path / ".TS_X-wds.job-abc123"
    (stale / "0").mkdir(parents=True)
    other = tmp_path / ".TS_X-wds2.job-abc123"  # another output's: kept
    other.mkdir()
    with job_folder(output):
        assert not stale.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name]


def test_gathering_several_jobs_removes_a_stale_scratch_folder_too(tmp_path):
    """A one-job writer killed before ``jobs`` was raised leaves its scratch folder; the
    several-jobs path (gather_dataset.py) removes it with the same rule."""
    output = tmp_path / "TS_X.zarr"
    stale, other = tmp_path / ".TS_X.zarr.job-abc123", tmp_path / ".TS_X.zarr2.job-abc123"
    (stale / "0").mkdir(parents=True)
    other.mkdir()
    remove_stale_job_folders(output)
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name]
