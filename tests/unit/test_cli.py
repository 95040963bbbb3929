"""The ``trainset`` command: every subcommand on tiny data, one line on success, exit 1 with a
message on bad input, ``--version``, ``-v``/``-q`` on either side of the subcommand, and
``predict`` applying a run to a new dataset (in data units) while refusing one that does not fit."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from tests.conftest import stored_sequences
from trainset import __version__
from trainset.cli import build_parser, log_level, main

REPO = Path(__file__).resolve().parents[2]
RUN = {"name": "stats", "model": {"name": "mlp", "params": {"hidden": [8]}},
       "training": {"losses": [{"name": "mse"}], "epochs": 1, "batch_size": 32}}


def ok(capsys, *argv: str) -> str:
    """Run a subcommand that must succeed; its one success line."""
    code = main([str(a) for a in argv])
    out = capsys.readouterr().out.strip()
    assert code == 0, out
    assert len(out.splitlines()) == 1, out
    return out


def refused(capsys, *argv: str) -> str:
    """Run a subcommand that must fail with exit 1; its message."""
    assert main([str(a) for a in argv]) == 1
    err = capsys.readouterr().err
    assert "error: " in err and "Traceback" not in err
    return err.split("error: ", 1)[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small sequence dataset, its scalers and a two-epoch run trained through the CLI."""
    root = tmp_path_factory.mktemp("cli")
    data = stored_sequences(root / "data", "statistics", 120, seed=3, length=16)
    assert main(["-q", "fit-scalers", str(data), "-o", str(root / "scalers.json")]) == 0
    config = root / "run.yaml"
    config.write_text(yaml.safe_dump({**RUN, "dataset": str(data)}))
    assert main(["train", "-q", "--config", str(config), "--scalers", str(root / "scalers.json"),
                 "--out", str(root / "run")]) == 0
    return root, data, config


def test_version_and_console_script():
    script = Path(sys.executable).with_name("trainset")  # installed by pip install -e .: the README's command
    command = [str(script)] if script.exists() else [sys.executable, "-m", "trainset"]
    out = subprocess.run([*command, "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"trainset {__version__}"


def test_every_option_has_help():
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert {"ingest", "demo", "validate", "split", "fit-scalers", "convert", "train", "find-lr", "evaluate",
            "predict", "check-config", "convert-legacy-wds", "import-macro-zarr"} <= set(commands)
    for name, sub in commands.items():
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help text"


@pytest.mark.parametrize("argv, command, level", [
    (["train", "--config", "x"], "train", logging.INFO),
    (["-q", "train", "--config", "x"], "train", logging.WARNING),
    (["train", "-q", "--config", "x"], "train", logging.WARNING),
    (["validate", "p"], "validate", logging.WARNING),
    (["-v", "validate", "p"], "validate", logging.INFO),
    (["validate", "p", "-v"], "validate", logging.INFO),
    (["validate", "-vv", "p"], "validate", logging.DEBUG),
    (["-v", "validate", "p", "-v"], "validate", logging.DEBUG),  # the counts add up
])
def test_verbosity_before_or_after_the_subcommand(argv, command, level):
    from trainset.cli import combine_logging

    args = combine_logging(build_parser().parse_args(argv))
    assert args.command == command and log_level(args) == level


def test_verbose_and_quiet_together_are_refused(capsys):
    assert main(["-v", "validate", "x", "-q"]) == 2
    assert "contradict" in capsys.readouterr().err


@pytest.mark.parametrize("steps", ["1", "0", "many"])
def test_evaluate_refuses_fewer_than_two_sample_steps(capsys, steps):
    """One step would leave the starting noise in the frames: refused before anything is read."""
    with pytest.raises(SystemExit) as stop:
        main(["evaluate", "RUN", "--dataset", "D", "--sample-steps", steps])
    assert stop.value.code == 2 and f"--sample-steps: {steps!r} is not an integer >= 2" in capsys.readouterr().err


def test_check_config_of_a_missing_file_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    assert main(["check-config", str(tmp_path / "nothere.yaml")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nothere.yaml: config file not found" in err


def test_demo_ingest_and_validate(tmp_path, capsys):
    table = tmp_path / "flu.parquet"
    assert str(table) in ok(capsys, "demo", table, "--seed", 1)
    assert len(pd.read_parquet(table)) > 0
    ok(capsys, "ingest", table, "-o", tmp_path / "clean.parquet")
    assert (tmp_path / "clean.summary.json").exists()
    data = stored_sequences(tmp_path / "d", "statistics", 30, seed=1, length=8)
    assert ok(capsys, "validate", data).startswith("OK:")
    assert "missing.csv" in refused(capsys, "ingest", tmp_path / "missing.csv", "-o", tmp_path / "x.parquet")
    assert not (tmp_path / "x.parquet").exists()


def test_split_fit_scalers_and_convert(tmp_path, capsys):
    data = stored_sequences(tmp_path / "d", "statistics", 50, seed=2, length=8)
    assert "train" in ok(capsys, "split", data, "-o", tmp_path / "splits.json", "--fractions",
                         "train=0.6,val=0.2,test=0.2", "--seed", 5)
    sizes = json.loads((tmp_path / "splits.json").read_text())
    assert sizes["sizes"] == {"train": 30, "val": 10, "test": 10}
    assert "not NAME=NUMBER" in refused(capsys, "split", data, "-o", tmp_path / "s2.json", "--fractions", "train")
    ok(capsys, "fit-scalers", data, "-o", tmp_path / "sc.json", "--scaler", "data=standard")
    assert "data" in json.loads((tmp_path / "sc.json").read_text())["scalers"]
    line = ok(capsys, "convert", data, tmp_path / "copy.zarr", "--splits", tmp_path / "splits.json",
              "--option", "chunk=16")
    assert "zarr" in line and (tmp_path / "copy.zarr").is_dir()
    assert ok(capsys, "validate", tmp_path / "copy.zarr").startswith("OK:")
    assert "--overwrite" in refused(capsys, "convert", data, tmp_path / "copy.zarr")
    assert "no format has this suffix" in refused(capsys, "convert", data, tmp_path / "copy.txt")
    assert not (tmp_path / "copy.txt").exists()


def test_train_find_lr_and_evaluate(trained, tmp_path, capsys):
    root, data, config = trained
    assert (root / "run" / "best.pt").exists() and (root / "run" / "config.json").exists()
    line = ok(capsys, "find-lr", "-q", "--config", config, "--scalers", root / "scalers.json",
              "-o", tmp_path / "lr.json", "--steps", 5)
    assert "suggested lr" in line and (tmp_path / "lr.png").exists()
    assert json.loads((tmp_path / "lr.json").read_text())["suggested_lr"] > 0
    line = ok(capsys, "evaluate", root / "run", "--dataset", data, "--scalers", root / "scalers.json",
              "-o", tmp_path / "report", "-q")
    assert "rmse" in line and (tmp_path / "report" / "report.html").exists()
    assert "training split" in refused(capsys, "evaluate", root / "run", "--dataset", data, "--scalers",
                                       root / "scalers.json", "-o", tmp_path / "r2", "--split", "train")
    assert "not a stored dataset" in refused(capsys, "train", "--config", config, "--dataset", tmp_path / "none.h5")


def test_a_run_trained_for_cuda_is_evaluated_and_predicts_with_device_cpu(trained, tmp_path, capsys):
    """The checkpoint is device-portable: --device replaces the run's training.device."""
    import shutil

    root, data, _ = trained
    run = tmp_path / "gpu_run"
    shutil.copytree(root / "run", run)
    config = json.loads((run / "config.json").read_text())
    config["training"]["device"] = "cuda"
    (run / "config.json").write_text(json.dumps(config))
    common = ["--dataset", data, "--scalers", root / "scalers.json", "-q"]
    assert "training.device" in refused(capsys, "evaluate", run, *common, "-o", tmp_path / "r1")
    assert "rmse" in ok(capsys, "evaluate", run, *common, "-o", tmp_path / "r2", "--device", "cpu")
    ok(capsys, "predict", run, *common, "-o", tmp_path / "p.nc", "--device", "cpu")
    assert (tmp_path / "p.nc").exists() and not (tmp_path / "r1").exists()


def test_predict_writes_data_units_for_a_new_dataset(trained, tmp_path, capsys):
    root, _, _ = trained
    new = stored_sequences(tmp_path / "new", "statistics", 40, seed=5, length=16)
    line = ok(capsys, "predict", root / "run", "--dataset", new, "--scalers", root / "scalers.json",
              "-o", tmp_path / "pred.nc", "-q")
    assert "40" in line or "samples" in line
    with xr.open_dataset(tmp_path / "pred.nc") as pred:
        assert pred["pred"].shape == (40, 3) and set(pred["split"].values) == {"train", "val", "test"}
        index, target = pred["index"].values, pred["target"].values
        assert pred.attrs["run"] == "stats" and len(pred.attrs["checkpoint_sha256"]) == 64
    with h5py.File(new) as stored:  # targets came back in data units, as stored
        labels = np.concatenate([np.asarray(stored[k]["labels"]) for k in sorted(stored) if "labels" in stored[k]]) \
            if "labels" not in stored else np.asarray(stored["labels"])
    np.testing.assert_allclose(target, labels[index], rtol=1e-5, atol=1e-5)
    ok(capsys, "predict", root / "run", "--dataset", new, "--scalers", root / "scalers.json",
       "-o", tmp_path / "test.nc", "--split", "test", "-q")
    with xr.open_dataset(tmp_path / "test.nc") as pred:
        assert set(pred["split"].values) == {"test"}


def test_predict_refuses_a_dataset_that_does_not_fit(trained, tmp_path, capsys):
    root, _, _ = trained
    longer = stored_sequences(tmp_path / "long", "statistics", 40, seed=5, length=24)
    err = refused(capsys, "predict", root / "run", "--dataset", longer, "--scalers", root / "scalers.json",
                  "-o", tmp_path / "p.nc")
    assert "'data'" in err and "[16, 3]" in err and "[24, 3]" in err
    new = stored_sequences(tmp_path / "new", "statistics", 40, seed=5, length=16)
    assert "scalers" in refused(capsys, "predict", root / "run", "--dataset", new, "-o", tmp_path / "p.nc")
    assert "no split" in refused(capsys, "predict", root / "run", "--dataset", new, "--scalers",
                                 root / "scalers.json", "-o", tmp_path / "p.nc", "--split", "holdout")
    assert not (tmp_path / "p.nc").exists()


def test_check_config_names_key_value_and_fix(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    good = tmp_path / "good.yaml"
    good.write_text("seed: 7\n")
    assert ok(capsys, "check-config", good).startswith("OK:")
    typo = tmp_path / "typo.yaml"
    typo.write_text("mixs:\n  A: {}\n")
    err = refused(capsys, "check-config", typo)
    assert "mixs: unknown key" in err and "did you mean 'mixes'" in err and len(err.splitlines()) < 6
    broken = tmp_path / "broken.yaml"
    broken.write_text("seed: 3\nmixes:\n  a: [1,\n  b: 2\n")
    err = refused(capsys, "check-config", broken)
    assert f"{broken}:" in err and "YAML syntax error" in err
    assert err.split(f"{broken}:")[1].split(":")[0].isdigit()  # the line number


def test_run_checks_config_files_before_snakemake(tmp_path, monkeypatch, capsys):
    """`trainset run` answers a missing or broken --configfile in one line (snakemake prints a
    traceback), before starting snakemake."""
    from trainset.cli import _configfiles

    monkeypatch.chdir(tmp_path)
    assert main(["run", "--cores", "1", "--configfile", "nope.yaml", "-n"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope.yaml: config file not found" in err
    (tmp_path / "bad.yaml").write_text("mixes:\n  A: {table: x\n")
    assert main(["-q", "run", "-n", "--configfile=bad.yaml"]) == 1
    assert "bad.yaml:3:1: YAML syntax error" in capsys.readouterr().err
    assert _configfiles(["--configfiles", "a.yaml", "b.yaml", "-n", "--configfile=c.yaml", "x"]) == \
        ["a.yaml", "b.yaml", "c.yaml"]


@pytest.mark.workflow
def test_run_passes_everything_else_to_snakemake(tmp_path):
    config = Path(__file__).resolve().parents[2] / "config/test/config.yaml"
    result = subprocess.run([sys.executable, "-m", "trainset", "run", "-n", "--cores", "1", "--directory",
                             str(tmp_path), "--configfile", str(config)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "train_model" in result.stdout


def test_the_package_version_is_the_installed_distributions():
    """``trainset.__version__`` is a constant (no metadata scan per rule job); pyproject.toml
    reads it, so the installed distribution says the same."""
    from importlib.metadata import version

    assert __version__ == version("trainset")
