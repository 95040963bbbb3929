"""Every rule job is a fresh Python process, so whatever its script imports is paid once per job
(the cheapest jobs are mostly imports). Format adapters are imported on first use
(``trainset.io.base.ADAPTERS``): a job imports the adapter it works with, not all four, and
nothing heavier than its work needs. Each check runs in a subprocess, whose ``sys.modules``
starts empty."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import stored_sequences
from trainset.errors import TrainsetError
from trainset.io.base import ADAPTERS, FORMATS, VARIANTS, get_copy, get_format, stored_copies

REPO = Path(__file__).resolve().parents[2]
WATCHED = ("torch", "zarr", "webdataset", "matplotlib", "sklearn", "scipy", "xarray", "pandas", "netCDF4",
           "trainset.io.netcdf", "trainset.io.wds", "trainset.io.zarr_", "trainset.io.hdf5")


def imported_by(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; return what it leaves in ``result`` and which
    :data:`WATCHED` modules it imported."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps({{'result': result, 'modules': " \
            f"[m for m in {WATCHED!r} if m in sys.modules]}}))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def script_imports(script: str) -> str:
    """The module-level ``from trainset... import ...`` lines of a rule script, as one statement block."""
    text = (REPO / "src" / "scripts" / f"{script}.py").read_text()
    lines = re.findall(r"^from trainset[\w.]* import .+$", text, re.M)
    assert lines, script
    return "\n".join(lines)


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("lazy")
    return {fmt: stored_sequences(folder / fmt, "statistics", 24, 3, 8, fmt=fmt)
            for fmt in ("hdf5", "netcdf", "zarr")}


def test_validating_an_hdf5_copy_imports_only_its_adapter(stored):
    """What a ``validate_dataset`` job for the hdf5 copy runs: its script's imports, then the check."""
    code = (f"{script_imports('validate_dataset')}\n"
            "copy = get_copy('hdf5')\n"
            f"result = validate_dataset({str(stored['hdf5'])!r}, format=copy.format)['valid']")
    found = imported_by(code)
    assert found["result"] is True
    assert found["modules"] == ["trainset.io.hdf5"]


def test_validating_and_reading_the_netcdf_copy_imports_no_other_adapter(stored):
    """What ``validate_dataset`` and ``fit_scalers`` do with the canonical copy: check it, read
    its metadata and rows through h5py (:mod:`trainset.io.netcdf_plain`); no xarray, pandas,
    netCDF-C, Zarr, WebDataset, torch or plotting."""
    code = (f"{script_imports('validate_dataset')}\n"
            "from trainset.io.netcdf import NetCDFReader\n"
            f"result = validate_dataset({str(stored['netcdf'])!r}, format='netcdf')['valid']\n"
            f"NetCDFReader({str(stored['netcdf'])!r}).read(0, [0, 1])")
    found = imported_by(code)
    assert found["result"] is True
    assert set(found["modules"]) == {"trainset.io.netcdf", "trainset.io.hdf5"}


def test_a_variant_copy_imports_only_its_formats_adapter():
    found = imported_by("from trainset.io.base import get_copy\n"
                        "c = get_copy('hdf5_presplit')\nresult = [c.format, c.suffix, c.options]")
    assert found["result"] == ["hdf5", ".presplit.h5", {"layout": "presplit"}]
    assert found["modules"] == ["trainset.io.hdf5"]


def test_importing_the_io_package_imports_no_adapter():
    found = imported_by("import trainset.io, trainset.validate, trainset.open, trainset.scalers\nresult = None")
    assert found["modules"] == []


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_each_adapter_module_registers_its_name(name):
    """The names table cannot drift from the modules: importing the module alone registers the name."""
    found = imported_by(f"import trainset.io.{ADAPTERS[name]}\nfrom trainset.io.base import FORMATS\n"
                        f"fmt = FORMATS.loaded()[{name!r}]\nresult = [type(fmt).__module__, fmt.name]")
    assert found["result"][0].startswith(f"trainset.io.{ADAPTERS[name]}") and found["result"][1] == name


def test_the_tables_name_every_built_in_adapter_and_variant():
    assert set(FORMATS) == set(ADAPTERS)
    declared = {variant: name for name in ADAPTERS for variant in get_format(name).variants}
    assert declared == VARIANTS
    assert set(stored_copies()) == set(ADAPTERS) | set(VARIANTS)


def test_get_copy_gives_what_stored_copies_lists():
    for name, copy in stored_copies().items():
        assert get_copy(name) == copy
    with pytest.raises(TrainsetError, match="unknown dataset format 'hdf6'"):
        get_copy("hdf6")
    with pytest.raises(TrainsetError, match="unknown dataset format 'hdf6'.*'zarr'"):
        get_format("hdf6")


def test_listing_keeps_the_table_order_whatever_was_loaded_first(stored):
    """``guess_format`` tries adapters in :data:`ADAPTERS` order, not in the order jobs used them."""
    found = imported_by("from trainset.io.base import FORMATS, get_format, guess_format\n"
                        f"get_format('zarr')\nresult = [list(FORMATS), guess_format({str(stored['zarr'])!r}).name]")
    assert found["result"] == [list(ADAPTERS), "zarr"]


def test_guessing_a_netcdf_file_stops_at_its_adapter(stored):
    """Jobs open the canonical NetCDF copy by guessing its format: HDF5 is tried first (by name,
    no read), NetCDF matches, and the Zarr and WebDataset adapters are never imported."""
    found = imported_by("from trainset.io.base import guess_format\n"
                        f"result = guess_format({str(stored['netcdf'])!r}).name")
    assert found["result"] == "netcdf"
    assert found["modules"] == ["trainset.io.netcdf", "trainset.io.hdf5"]


USER_ADAPTER = """
from trainset.io.base import FORMATS, Format, get_format, register


class Fake(Format):
    def __init__(self, name):
        self.name, self.suffix = name, ".fake"

    def write(self, collection, path, splits=None, **options): ...
    def reader(self, path): ...
    def guess_can_open(self, path): return False
    def check(self, path): return []
    def load(self, path): ...
"""


def test_a_users_adapter_keeps_its_name_after_the_built_ins_load():
    """As when importing trainset.io registered every built-in first: a user's adapter named like
    a built-in replaces it, and stays when a listing or an import loads the built-in module."""
    found = imported_by(USER_ADAPTER + "mine = register(Fake('zarr'))\n"
                        "names = list(FORMATS)\n"
                        "import trainset.io.zarr_\n"
                        "other = register(Fake('csv'))\nagain = register(Fake('csv'))\n"
                        "result = [names, get_format('zarr') is mine, FORMATS['csv'] is again, "
                        "type(FORMATS.loaded()['hdf5']).__name__]")
    assert found["result"] == [list(ADAPTERS), True, True, "HDF5Format"]


def test_an_unknown_format_is_named_without_importing_any_adapter():
    """The error lists every name from the table, so a broken optional adapter cannot turn
    "unknown format" into its ImportError."""
    found = imported_by("from trainset.errors import TrainsetError\nfrom trainset.io.base import get_copy, get_format\n"
                        "result = []\nfor ask in (get_format, get_copy):\n"
                        "    try:\n        ask('hdf6')\n    except TrainsetError as error:\n"
                        "        result.append(str(error))")
    assert found["modules"] == []
    assert "'hdf6'" in found["result"][0] and "'zarr'" in found["result"][0]
    assert "'hdf5_presplit'" in found["result"][1]


def test_a_random_split_of_the_netcdf_copy_imports_no_xarray(stored, tmp_path):
    """What a ``make_splits`` job with method ``random`` runs: the sample count comes from the
    metadata (h5py), and the splits equal those of the whole collection opened through xarray."""
    out = tmp_path / "splits.json"
    code = (f"{script_imports('make_splits')}\n"
            f"s = split_dataset({str(stored['netcdf'])!r}, {str(out)!r}, {{'method': 'random'}}, 3)\n"
            "result = {k: v.tolist() for k, v in s.items()}")
    found = imported_by(code)
    assert found["modules"] == ["trainset.io.netcdf", "trainset.io.hdf5"]
    from trainset.datasets import _split
    from trainset.io.base import get_format

    with get_format("netcdf").open(stored["netcdf"]) as (collection, _):
        opened = _split(collection, stored["netcdf"], tmp_path / "opened.json", {"method": "random"}, 3)
    assert found["result"] == {k: v.tolist() for k, v in opened.items()}
    assert out.read_bytes() == (tmp_path / "opened.json").read_bytes()


def test_fitting_transform_scalers_on_the_netcdf_copy_imports_no_xarray_or_sklearn(stored, tmp_path):
    """What a ``fit_scalers`` job with a flu transform (``zscore``) runs; scikit-learn is imported
    only by its ``standard``, ``minmax`` and ``robust`` scalers."""
    code = (f"{script_imports('fit_scalers')}\n"
            f"s = fit_dataset_scalers({str(stored['netcdf'])!r}, {str(tmp_path / 's.json')!r}, "
            "{'data': {'kind': 'zscore', 'feature_axis': -1}})\nresult = sorted(s.statistics)")
    found = imported_by(code)
    assert found["result"] == ["data"]
    assert found["modules"] == ["trainset.io.netcdf", "trainset.io.hdf5"]


def test_ingesting_a_domain_imports_no_xarray(tmp_path):
    """What an ``ingest_domain`` job runs: the demo tables need pandas, not xarray (the
    framing functions import it), nor any other domain's module."""
    code = (f"{script_imports('ingest_domain')}\n"
            "import sys\n"
            "cfg = {'domain': 'sequences', 'recipe': 'pulses', 'samples': 8, 'length': 24, 'features': None, "
            "'params': {}}\n"
            f"result = [sorted(ingest_domain(cfg, 0, {str(tmp_path / 'tables')!r})['rows']), "
            "'trainset.domains.flights' in sys.modules, 'trainset.domains.macro' in sys.modules]")
    found = imported_by(code)
    assert found["result"] == [["inputs", "labels"], False, False]
    assert "xarray" not in found["modules"] and "torch" not in found["modules"]
