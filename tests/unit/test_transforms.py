"""Transforms (encode/decode pairs) and seeded augmentations on tiny synthetic arrays."""

import json

import numpy as np
import pytest

from trainset.augment import Augment, augment_sample, sample_rng, shift_weeks
from trainset.errors import TrainsetError
from trainset.transforms import TRANSFORMS, Transform, make_transform, transform_from_dict

NAMES = sorted(TRANSFORMS)


@pytest.fixture
def counts() -> np.ndarray:
    """(sample, feature, week, place) non-negative data; feature 1 is all zeros."""
    rng = np.random.default_rng(0)
    x = rng.gamma(2.0, 50.0, size=(6, 3, 10, 4)).astype(np.float32)
    x[:, 1] = 0.0
    x[0, 2, 0, 0] = 0.0
    return x


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_batch_and_single_sample(name, counts):
    t = make_transform(name).fit(counts)
    y = t.encode(counts)
    assert y.dtype == np.float32 and y.shape == counts.shape
    assert np.isfinite(y).all()
    np.testing.assert_allclose(t.decode(y), counts, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(t.decode(t.encode(counts[2])), counts[2], rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(y[:, 1], t.encode(np.zeros_like(counts))[:, 1])


@pytest.mark.parametrize("name", NAMES)
def test_dict_round_trip_is_json_and_identical(name, counts):
    t = make_transform(name).fit(counts)
    d = json.loads(json.dumps(t.to_dict()))
    t2 = Transform.from_dict(d)
    assert type(t2) is type(t) and t2.params() == t.params()
    np.testing.assert_array_equal(t2.encode(counts), t.encode(counts))
    y = t.encode(counts)
    np.testing.assert_array_equal(t2.decode(y), t.decode(y))


def test_known_values(counts):
    x = np.array([[[0.0, 4.0]], [[1.0, 2.0]]])  # (sample=2, feature=1, week=2)
    np.testing.assert_allclose(make_transform("linear_max").fit(x).encode(x).ravel(),
                               [0, 1, 0.25, 0.5])
    np.testing.assert_allclose(make_transform("sqrt_max").fit(x).encode(x).ravel(),
                               [0, 2, 1, np.sqrt(0.5) * 2])
    np.testing.assert_allclose(make_transform("sqrt_max", scale=1).fit(x).encode(x)[0, 0, 1], 1)
    z = make_transform("zscore").fit(counts).encode(counts).astype(np.float64)
    np.testing.assert_allclose(z[:, [0, 2]].mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(z[:, [0, 2]].std(axis=(0, 2, 3)), 1, atol=1e-5)
    np.testing.assert_allclose(make_transform("log", offset=2).fit(x).encode(x).max(), 1)


def test_unknown_name_and_bad_params_raise():
    with pytest.raises(TrainsetError, match="'nope'.*sqrt_max"):
        make_transform("nope")
    with pytest.raises(TrainsetError, match="scale"):
        make_transform("zscore", scale=3)


def test_misuse_raises(counts):
    with pytest.raises(TrainsetError, match="not fitted"):
        make_transform("zscore").encode(counts)
    with pytest.raises(TrainsetError, match="non-negative"):
        make_transform("sqrt_max").fit(-counts - 1)
    with pytest.raises(TrainsetError, match="feature"):
        make_transform("zscore").fit(counts).encode(counts[:, :2])
    bad = counts.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(TrainsetError, match="NaN"):
        make_transform("linear_max").fit(bad)


# -- augmentation -----------------------------------------------------------------------------
ALL = Augment(poisson=True, max_shift=3, rescale=(0.5, 2.0))


def test_augment_off_by_default_and_config_round_trip(counts):
    assert not Augment().enabled
    np.testing.assert_array_equal(augment_sample(counts[0], Augment(), sample_rng(0, 0, 0)),
                                  counts[0])
    assert Augment.from_dict(json.loads(json.dumps(ALL.to_dict()))) == ALL
    with pytest.raises(TrainsetError):
        Augment(rescale=(2.0, 1.0))
    with pytest.raises(TrainsetError):
        Augment(max_shift=-1)


def test_augment_deterministic_per_seed_epoch_index(counts):
    a = augment_sample(counts[1], ALL, sample_rng(7, 3, 1))
    b = augment_sample(counts[1], ALL, sample_rng(7, 3, 1))
    c = augment_sample(counts[1], ALL, sample_rng(7, 4, 1))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_poisson_integer_non_negative(counts):
    y = augment_sample(counts[0], Augment(poisson=True), sample_rng(0, 0, 0))
    assert y.dtype == np.float32 and (y >= 0).all()
    np.testing.assert_array_equal(y, np.round(y))
    assert (y[1] == 0).all()  # Poisson(0) is 0
    with pytest.raises(TrainsetError, match="non-negative"):
        augment_sample(-counts[0] - 1, Augment(poisson=True), sample_rng(0, 0, 0))


@pytest.mark.parametrize("pad", ["zeros", "edge"])
def test_shift_moves_curve_by_drawn_amount(counts, pad):
    cfg = Augment(max_shift=3, shift_pad=pad)
    x = counts[0]
    seen = set()
    for index in range(12):
        rng = sample_rng(0, 0, index)
        s = int(sample_rng(0, 0, index).integers(-3, 3, endpoint=True))  # same first draw
        y = augment_sample(x, cfg, rng)
        seen.add(s)
        n = x.shape[1]
        np.testing.assert_array_equal(y[:, max(s, 0):n + min(s, 0)], x[:, max(-s, 0):n - max(s, 0)])
        if s > 0:
            fill = 0 if pad == "zeros" else x[:, :1]
            np.testing.assert_array_equal(y[:, :s], np.broadcast_to(fill, y[:, :s].shape))
    assert len(seen) > 2


def test_shift_weeks_vectorised_matches_known():
    x = np.arange(5, dtype=np.float32).reshape(1, 1, 5, 1).repeat(2, axis=0)
    out = shift_weeks(x, np.array([2, -1]))
    np.testing.assert_array_equal(out[0].ravel(), [0, 0, 0, 1, 2])
    np.testing.assert_array_equal(out[1].ravel(), [1, 2, 3, 4, 0])
    np.testing.assert_array_equal(shift_weeks(x, np.array([2, -1]), "edge")[1].ravel(),
                                  [1, 2, 3, 4, 4])


def test_rescale_factor_within_bounds(counts):
    x = counts[0]
    for index in range(20):
        y = augment_sample(x, Augment(rescale=(0.5, 2.0)), sample_rng(1, 0, index))
        ratio = y[0] / x[0]
        assert 0.5 - 1e-6 <= ratio.min() and ratio.max() <= 2.0 + 1e-6
        np.testing.assert_allclose(ratio, ratio.flat[0], rtol=1e-5)


def test_transform_from_dict_rejects_garbage():
    with pytest.raises(TrainsetError):
        transform_from_dict({"params": {}})
