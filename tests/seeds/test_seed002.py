"""Seed 002 (Glideator): legacy ``.pth`` shards convert to a trainset WebDataset, and pickles never run.

The shards are written here as the old pipeline wrote them: a tar per shard, one
``torch.save`` member per ``<key>.features.pth`` / ``.targets.pth`` / ``.date.pth``, in the
guide's ``training/train_data`` and ``training/val_data`` folders.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from trainset.cli import main
from trainset.errors import TrainsetError
from trainset.io.wds import WdsSource
from trainset.io.wds.legacy import convert_legacy_wds, read_legacy
from trainset.open import open_dataset
from trainset.validate import validate_dataset

SITES = (17, 4, 230)


def _pth(value) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def _write_shard(path: Path, samples: list[tuple[str, dict[str, bytes]]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for key, members in samples:
            for suffix, raw in members.items():
                info = tarfile.TarInfo(f"{key}.{suffix}")
                info.size = len(raw)
                tar.addfile(info, io.BytesIO(raw))


def _guide_sample(rng: np.random.Generator, index: int) -> tuple[dict, torch.Tensor, str]:
    """One sample as the old model's forward() took it: weather per hour, site features, site id, date."""
    features = {"weather": {hour: torch.tensor(rng.normal(size=5), dtype=torch.float32) for hour in ("9", "12", "15")},
                "site": torch.tensor(rng.normal(size=3), dtype=torch.float32),
                "site_id": torch.tensor(SITES[index % 3]),
                "date": torch.tensor([index % 2, 2023, 0.5, -0.5], dtype=torch.float32)}
    score = rng.uniform(0, 120)
    targets = torch.tensor([float(score > t) for t in range(0, 101, 10)])
    return features, targets, f"2023-05-{1 + index % 28:02d}"


def _guide_layout(root: Path, n_train: int = 7, n_val: int = 4) -> list[tuple[str, dict, torch.Tensor, str]]:
    """training/train_data (two shards) and training/val_data; returns the samples in stored order."""
    rng = np.random.default_rng(0)
    written = []
    plan = [("train_data/shard-000.tar", range(0, 4)), ("train_data/shard-001.tar", range(4, n_train)),
            ("val_data/shard-000.tar", range(n_train, n_train + n_val))]
    for shard, indices in plan:
        samples = []
        for i in indices:
            features, targets, day = _guide_sample(rng, i)
            samples.append((f"{i:06d}", {"features.pth": _pth(features), "targets.pth": _pth(targets),
                                         "date.pth": _pth(day)}))
            written.append((f"{i:06d}", features, targets, day))
        _write_shard(root / shard, samples)
    return written


def _flat(features: dict) -> np.ndarray:
    weather = [features["weather"][h].numpy() for h in ("9", "12", "15")]
    return np.concatenate([*weather, features["site"].numpy(), features["date"].numpy()]).astype(np.float32)


def test_guide_shards_convert_and_read_back_value_by_value(tmp_path):
    written = _guide_layout(tmp_path / "training")
    dst = tmp_path / "TS_flights-wds"
    assert main(["convert-legacy-wds", str(tmp_path / "training"), str(dst), "--samples-per-shard", "5"]) == 0

    samples = list(open_dataset(dst))
    assert len(samples) == len(written)
    for sample, (_, features, targets, day) in zip(samples, written):
        np.testing.assert_array_equal(sample["features"].numpy(), _flat(features))
        np.testing.assert_array_equal(sample["targets"].numpy(), targets.numpy().astype(np.float32))
        assert int(sample["date"]) == (np.datetime64(day) - np.datetime64("1970-01-01")).astype(int)
        site_ids = sorted(SITES)
        assert site_ids[int(sample["site"])] == int(features["site_id"])  # an embedding index of the sorted ids
    assert [int(s["index"]) for s in open_dataset(dst, split="val")] == [7, 8, 9, 10]
    assert len(list(open_dataset(dst, split="train"))) == 7

    attrs = WdsSource(dst).attrs
    assert attrs["task"] == "thresholds" and attrs["thresholds"] == list(range(0, 101, 10))
    assert attrs["site_ids"] == sorted(SITES) and attrs["hours"] == ["h09", "h12", "h15"]
    assert attrs["feature_names"][:2] == ["weather_000_h09", "weather_001_h09"] and len(attrs["feature_names"]) == 22
    report = validate_dataset(dst)
    assert report["valid"], report["problems"]


def test_plain_tensor_features_with_site_column(tmp_path):
    rng = np.random.default_rng(1)
    rows = []
    for i in range(6):
        values = rng.normal(size=4).astype(np.float32)
        values[2] = SITES[i % 3]
        rows.append((f"s{i}", {"features.pth": _pth(torch.from_numpy(values)),
                               "targets.pth": _pth(torch.tensor([1.0, 0.0, 0.0])),
                               "date.pth": _pth(torch.tensor(19500 + i))}, values))
    _write_shard(tmp_path / "shards" / "a.tar", [(k, m) for k, m, _ in rows])
    collection, splits = read_legacy(tmp_path / "shards", site_column=2, thresholds=[0, 50, 100])
    part = next(iter(collection.parts.values()))
    assert splits is None
    np.testing.assert_array_equal(part["features"].values, np.stack([np.delete(v, 2) for _, _, v in rows]))
    np.testing.assert_array_equal(part["site_id"].values, [SITES[i % 3] for i in range(6)])
    np.testing.assert_array_equal(part["date"].values, 19500 + np.arange(6))
    with pytest.raises(TrainsetError, match="3 columns, not the guide's 11"):
        read_legacy(tmp_path / "shards", site_column=2)
    without, _ = read_legacy(tmp_path / "shards", thresholds=[0, 50, 100])
    assert "site" not in next(iter(without.parts.values())) and "site_ids" not in without.attrs


class _Touch:
    """Unpickling this would create a file: what a malicious shard member does."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


class _System:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


@pytest.mark.parametrize("payload", [_Touch, _System])
def test_malicious_member_is_refused_by_name_and_never_runs(tmp_path, payload, capsys):
    marker = tmp_path / "pwned"
    _guide_layout(tmp_path / "training")
    shard = tmp_path / "training" / "val_data" / "shard-001.tar"
    evil = {"features.pth": _pth({"weather": payload(str(marker))}), "targets.pth": _pth(torch.zeros(11)),
            "date.pth": _pth("2023-06-01")}
    _write_shard(shard, [("000099", evil)])
    dst = tmp_path / "TS_out-wds"
    assert main(["convert-legacy-wds", str(tmp_path / "training"), str(dst)]) == 1
    err = capsys.readouterr().err
    assert "shard-001.tar" in err and "'000099.features.pth'" in err and "weights_only=True" in err
    assert not marker.exists()
    assert not dst.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".TS_out")]


@pytest.mark.parametrize("flag, got", [("--samples-per-shard", "got 1 and 0"),  # per member, per shard
                                       ("--samples-per-member", "got 0 and 10000")])
def test_zero_shard_sizes_are_refused_not_replaced_by_the_default(tmp_path, capsys, flag, got):
    """``0`` reaches the writer (not dropped as 'not given') and is refused there, writing nothing."""
    _guide_layout(tmp_path / "training")
    dst = tmp_path / "TS_zero-wds"
    assert main(["convert-legacy-wds", str(tmp_path / "training"), str(dst), flag, "0"]) == 1
    err = capsys.readouterr().err
    assert f"webdataset: samples_per_member and the shard size must be >= 1, {got}." in err
    assert "Fix: give samples_per_member / samples_per_shard of 1 or more" in err
    assert not dst.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".TS_zero")]


def test_unknown_members_are_refused_unless_skipped(tmp_path, caplog):
    rng = np.random.default_rng(2)
    features, targets, day = _guide_sample(rng, 0)
    members = {"features.pth": _pth(features), "targets.pth": _pth(targets), "date.pth": _pth(day),
               "meta.pkl": b"\x80\x04K\x01."}
    _write_shard(tmp_path / "s" / "x.tar", [("k0", members)])
    with pytest.raises(TrainsetError, match="'k0.meta.pkl': not one of the legacy members"):
        convert_legacy_wds(tmp_path / "s", tmp_path / "out-wds")
    assert not (tmp_path / "out-wds").exists()
    summary = convert_legacy_wds(tmp_path / "s", tmp_path / "out-wds", skip_unknown=True)
    assert summary["samples"] == 1 and "k0.meta.pkl" in caplog.text


def test_refusals_name_the_member(tmp_path):
    rng = np.random.default_rng(3)
    features, targets, day = _guide_sample(rng, 0)
    cases = {
        "missing": ({"features.pth": _pth(features), "targets.pth": _pth(targets)}, r"\['date.pth'\] missing"),
        "extra key": ({"features.pth": _pth({**features, "pilot": torch.ones(1)}), "targets.pth": _pth(targets),
                       "date.pth": _pth(day)}, r"key\(s\) \['pilot'\] cannot be mapped"),
        "targets": ({"features.pth": _pth(features), "targets.pth": _pth(targets * 3), "date.pth": _pth(day)},
                    "'k.targets.pth': targets .* not all 0 or 1"),
        "date": ({"features.pth": _pth(features), "targets.pth": _pth(targets), "date.pth": _pth("May 1st")},
                 "'k.date.pth': date 'May 1st' is not an ISO date"),
    }
    for name, (members, message) in cases.items():
        _write_shard(tmp_path / name / "a.tar", [("k", members)])
        with pytest.raises(TrainsetError, match=message):
            convert_legacy_wds(tmp_path / name, tmp_path / f"{name}-wds")
        assert not (tmp_path / f"{name}-wds").exists()
    (tmp_path / "exists-wds").mkdir()
    with pytest.raises(TrainsetError, match="already exists"):
        convert_legacy_wds(tmp_path / "missing", tmp_path / "exists-wds")


def test_converted_guide_shards_train_a_flight_model(tmp_path):
    from trainset.scalers import fit_dataset_scalers
    from trainset.train.config import TrainingConfig
    from trainset.train.run import train_run

    _guide_layout(tmp_path / "training", n_train=24, n_val=8)
    dst = tmp_path / "TS_legacy-wds"
    convert_legacy_wds(tmp_path / "training", dst)
    fit_dataset_scalers(dst, tmp_path / "scalers.json")
    run = {"name": "legacy", "model": {"name": "flight", "params": {"hidden": [8], "embedding_dim": 2}},
           "training": {"losses": [{"name": "bce"}], "epochs": 1, "batch_size": 8}}
    train_run(TrainingConfig.from_dict(run), dst, tmp_path / "run", tmp_path / "scalers.json")
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(history) == 1 and np.isfinite(history[0]["val_loss"])
