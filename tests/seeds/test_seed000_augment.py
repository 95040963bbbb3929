"""Seed 000: the run config's ``augment:`` reaches workflow training, training split only, with
draws keyed by (training.seed, epoch, sample index) whatever the batching or worker count."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import stored_sequences
from tests.seeds.flu_files import augment_changes_weights, copy_as, flu_mix
from trainset.augment import augment_sample, from_config, sample_rng
from trainset.errors import TrainsetError
from trainset.io.netcdf import open_netcdf_array
from trainset.train.config import TrainingConfig
from trainset.train.run import prepare_run

AUGMENT = {"poisson": True, "max_shift": 3, "rescale": [0.5, 2.0]}


def _cfg(path, batch_size=4, workers=0, augment=AUGMENT, seed=7):
    return TrainingConfig.from_dict({"dataset": str(path), "augment": augment,
                                     "training": {"batch_size": batch_size, "num_workers": workers, "seed": seed}})


def _by_index(factory, epoch):
    """index -> frames over one epoch of a loader factory."""
    out = {}
    for batch in factory(epoch):
        for i, frame in zip(batch["index"].tolist(), batch["frames"]):
            out[i] = frame.numpy().copy()
    return out


@pytest.fixture
def mix(tmp_path, axis, table_factory):
    path, _, _ = flu_mix(tmp_path / "d", axis, table_factory)
    return path, open_netcdf_array(path).values


def test_unknown_or_bad_augment_keys_are_refused_with_their_key():
    with pytest.raises(TrainsetError, match="augment.max_shfit: unknown key, did you mean max_shift"):
        TrainingConfig.from_dict({"dataset": "x", "augment": {"max_shfit": 2}})
    with pytest.raises(TrainsetError, match=r"augment.rescale: must be \[low, high\]"):
        TrainingConfig.from_dict({"dataset": "x", "augment": {"rescale": [2.0, 1.0]}})
    with pytest.raises(TrainsetError, match="augment.poisson: expected true or false"):
        TrainingConfig.from_dict({"dataset": "x", "augment": {"poisson": "yes"}})
    cfg = TrainingConfig.from_dict({"dataset": "x", "augment": AUGMENT})
    assert TrainingConfig.from_dict(cfg.to_dict()) == cfg and TrainingConfig().augment == {}


def test_training_split_is_augmented_as_flu_dataset_does_and_validation_never(mix):
    path, raw = mix
    run = prepare_run(_cfg(path), path, model=False, info={})
    cfg = from_config(AUGMENT)
    for epoch in (0, 1):
        train = _by_index(run.batches("train", True), epoch)
        assert sorted(train) == list(range(7))
        for i, frame in train.items():  # exactly FluDataset's draw for (seed, epoch, index)
            np.testing.assert_array_equal(frame, augment_sample(raw[i], cfg, sample_rng(7, epoch, i)))
            assert not np.array_equal(frame, raw[i])
    assert not np.array_equal(_by_index(run.batches("train", True), 0)[3],
                              _by_index(run.batches("train", True), 1)[3])  # a new draw every epoch
    val = _by_index(run.batches("val", False), 0)
    for i, frame in val.items():
        np.testing.assert_array_equal(frame, raw[i])


def test_draws_do_not_depend_on_batch_size_workers_or_order(mix):
    path, _ = mix
    seen = [_by_index(prepare_run(_cfg(path, b, w), path, model=False, info={}).batches("train", shuffle), 2)
            for b, w, shuffle in [(1, 0, False), (4, 0, True), (3, 1, True), (7, 1, False)]]
    for other in seen[1:]:
        assert sorted(other) == sorted(seen[0])
        for i in seen[0]:
            np.testing.assert_array_equal(other[i], seen[0][i])


def test_streamed_copy_gets_the_same_draws(mix):
    path, raw = mix
    wds = copy_as(path, "webdataset")
    mapped = _by_index(prepare_run(_cfg(path), path, model=False, info={}).batches("train", True), 1)
    streamed = _by_index(prepare_run(_cfg(wds, batch_size=2), wds, model=False, info={}).batches("train", True), 1)
    assert sorted(streamed) == sorted(mapped)
    for i in mapped:
        np.testing.assert_array_equal(streamed[i], mapped[i])


def test_augment_is_refused_on_a_dataset_without_flu_frames(tmp_path):
    path = stored_sequences(tmp_path, "pulses", 20, seed=1, length=24)
    cfg = TrainingConfig.from_dict({"dataset": str(path), "format": "hdf5", "augment": {"max_shift": 1}})
    with pytest.raises(TrainsetError, match="augment: .*flu frames.*Fix: remove augment"):
        prepare_run(cfg, path, model=False, info={})
    assert prepare_run(TrainingConfig.from_dict({"dataset": str(path), "format": "hdf5"}), path,
                       model=False, info={}).splits["train"] is not None


def test_augment_changes_the_trained_weights(tmp_path):
    assert augment_changes_weights(tmp_path)
