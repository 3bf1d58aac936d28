"""Result files: atomic writes whose mode follows the umask (not mkstemp's 0600)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import xarray as xr

from spinvalve.io import atomic_output, file_mode, umask, write_dataset


@pytest.fixture(params=[0o022, 0o027, 0o002])
def mask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_umask_is_read_without_changing_it(mask):
    assert umask() == mask
    assert os.umask(mask) == mask  # still set
    assert file_mode() == 0o666 & ~mask


def test_netcdf_files_get_the_umask_mode(tmp_path, mask):
    out = write_dataset(xr.Dataset({"a": ("t", np.arange(3.0))}), tmp_path / "job.nc")
    assert out.stat().st_mode & 0o777 == 0o666 & ~mask
    with open(tmp_path / "plain", "w"):  # what open() gives: the reference
        pass
    assert out.stat().st_mode & 0o777 == (tmp_path / "plain").stat().st_mode & 0o777
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.nc", "plain"]


def test_figures_get_the_umask_mode(tmp_path, mask):
    import matplotlib.pyplot as plt
    from spinvalve.figures.plot import save
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    done = save(fig, [tmp_path / "f.png", tmp_path / "f.pdf"])
    assert {p.name: p.stat().st_mode & 0o777 for p in done} == {"f.png": 0o666 & ~mask,
                                                              "f.pdf": 0o666 & ~mask}
    assert (tmp_path / "f.pdf").read_bytes()[:4] == b"%PDF"


def test_failed_write_leaves_no_temporary_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "x.nc"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_text("new")
            raise RuntimeError
    assert target.read_text() == "old" and sorted(tmp_path.iterdir()) == [target]
