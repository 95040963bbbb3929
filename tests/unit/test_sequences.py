"""Sequence recipes (seed 001's six task types) and framing long tables into collections."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trainset.domains.sequences import RECIPES, frame_sequences, make_sequence_tables
from trainset.errors import TrainsetError

N, T = 60, 64
#: recipe -> (labels dims, labels shape, labels dtype); None: no labels variable
EXPECTED = {
    "pulses": (("sample",), (N,), np.int64),
    "statistics": (("sample", "target"), (N, 3), np.float32),
    "labelling": (("sample", "time"), (N, T), np.int64),
    "forecast": (("sample", "step", "target"), (N, 8, 3), np.float32),
    "reconstruction": None,
    "summary": (("sample", "target"), (N, 3), np.float32),
}


def build(recipe: str, n: int = N, seed: int = 0, **params):
    inputs, labels = make_sequence_tables(recipe, n, seed, length=T, **params)
    return frame_sequences(inputs, labels, RECIPES[recipe], recipe).parts[recipe]


@pytest.mark.parametrize("recipe", list(RECIPES))
def test_recipe_shapes_dtypes_and_task(recipe):
    inputs, labels = make_sequence_tables(recipe, N, 0, length=T)
    collection = frame_sequences(inputs, labels, RECIPES[recipe], recipe)
    part = collection.parts[recipe]
    assert collection.attrs["task"] == RECIPES[recipe] and collection.attrs["recipe"] == recipe
    assert part["data"].dims == ("sample", "time", "feature") and part["data"].dtype == np.float32
    assert part["data"].shape[:2] == (N, T)
    assert np.isfinite(part["data"].values).all()
    expected = EXPECTED[recipe]
    if expected is None:
        assert labels is None and "labels" not in part
        return
    dims, shape, dtype = expected
    assert part["labels"].dims == dims and part["labels"].shape == shape and part["labels"].dtype == dtype
    sample = collection.sample(3)
    assert sample["labels"].dtype == dtype and sample["data"].shape == part["data"].shape[1:]


def test_generation_is_deterministic_under_the_seed():
    a, la = make_sequence_tables("forecast", 20, 5)
    b, lb = make_sequence_tables("forecast", 20, 5)
    c, _ = make_sequence_tables("forecast", 20, 6)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(la, lb)
    assert not np.allclose(a["value"], c["value"])


def test_pulse_labels_count_the_injected_pulses():
    part = build("pulses", n=300)
    signal = part["data"].values[:, :, 0]
    smooth = (signal[:, :-2] + signal[:, 1:-1] + signal[:, 2:]) / 3
    above = smooth > 1.0
    rising = (above[:, 1:] & ~above[:, :-1]).sum(axis=1) + above[:, 0]
    np.testing.assert_array_equal(rising, part["labels"].values)
    assert set(np.unique(part["labels"].values)) == {0, 1, 2}


def test_forecast_labels_continue_the_inputs():
    inputs, labels = make_sequence_tables("forecast", 400, 1, length=T, horizon=5)
    assert labels["t"].min() == T and labels["t"].max() == T + 4
    part = frame_sequences(inputs, labels, "seq2seq_regression", "f").parts["f"]
    last, first = part["data"].values[:, -1, 0], part["labels"].values[:, 0, 0]
    assert np.corrcoef(last, first)[0, 1] > 0.5
    np.testing.assert_array_equal(part["step"].values, np.arange(T, T + 5))


def test_regression_labels_stay_float():
    labels = build("statistics")["labels"].values
    assert labels.dtype == np.float32 and not np.array_equal(labels, np.round(labels))


def test_labelling_regimes_shift_the_signal_level():
    part = build("labelling", n=200)
    data, labels = part["data"].values[:, :, 0], part["labels"].values
    means = [data[labels == k].mean() for k in range(3)]
    assert means[0] < means[1] < means[2]


def test_summary_labels_are_derived_from_the_inputs():
    part = build("summary")
    data, labels = part["data"].values.astype(np.float64), part["labels"].values
    targets = list(part["target"].values)
    np.testing.assert_allclose(labels[:, targets.index("mean_x0")], data[:, :, 0].mean(1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(labels[:, targets.index("max_x1")], data[:, :, 1].max(1), rtol=1e-6)
    np.testing.assert_allclose(labels[:, targets.index("var_x2")], data[:, :, 2].var(1), rtol=1e-5)


def test_round_trip_from_shuffled_long_tables_with_named_ids():
    rng = np.random.default_rng(0)
    array = rng.normal(size=(4, 5, 2)).astype(np.float32)
    classes = rng.integers(0, 3, size=(4, 5))
    ids, names = np.array(["s0", "s1", "s2", "s3"]), np.array(["pressure", "temp"])
    s, t, f = np.indices(array.shape).reshape(3, -1)
    inputs = pd.DataFrame({"sample": ids[s], "t": t + 10, "feature": names[f], "value": array.ravel()})
    s2, t2 = np.indices(classes.shape).reshape(2, -1)
    labels = pd.DataFrame({"sample": ids[s2], "t": t2 + 10, "value": classes.ravel()})
    collection = frame_sequences(inputs.sample(frac=1, random_state=1), labels.sample(frac=1, random_state=2),
                                 "seq2seq_classification", "tags", attrs={"recipe": "mine"})
    part = collection.parts["tags"]
    np.testing.assert_array_equal(part["data"].values, array)
    np.testing.assert_array_equal(part["labels"].values, classes)
    assert list(part["sample_id"].values) == list(ids) and list(part["feature"].values) == list(names)
    assert list(part["time"].values) == list(range(10, 15))
    assert collection.attrs == {"task": "seq2seq_classification", "recipe": "mine", "num_classes": 3,
                                "target_seq_len": 5}


@pytest.fixture
def tables():
    return make_sequence_tables("statistics", 5, 0, length=20)


@pytest.mark.parametrize("column", ["sample", "t", "feature", "value"])
def test_missing_input_column_is_named(tables, column):
    inputs, labels = tables
    with pytest.raises(TrainsetError, match=f"missing column '{column}'"):
        frame_sequences(inputs.drop(columns=column), labels, "seq2static_regression", "x")


def test_missing_label_column_is_named(tables):
    inputs, labels = tables
    with pytest.raises(TrainsetError, match="labels table: missing column 'k'"):
        frame_sequences(inputs, labels.drop(columns="k"), "seq2static_regression", "x")


def test_duplicate_key_is_reported_with_its_columns(tables):
    inputs, labels = tables
    with pytest.raises(TrainsetError, match=r"duplicate rows for key \(sample, t, feature\) at sample=0"):
        frame_sequences(pd.concat([inputs, inputs.iloc[:1]]), labels, "seq2static_regression", "x")


def test_nan_is_reported_with_its_column(tables):
    inputs, labels = tables
    inputs = inputs.copy()
    inputs.loc[7, "value"] = np.nan
    with pytest.raises(TrainsetError, match="column 'value' has 1 missing values"):
        frame_sequences(inputs, labels, "seq2static_regression", "x")


def test_gaps_in_t_are_refused(tables):
    inputs, labels = tables
    with pytest.raises(TrainsetError, match="column 't' has gaps"):
        frame_sequences(inputs[inputs["t"] != 4], labels, "seq2static_regression", "x")
    with pytest.raises(TrainsetError, match="no row for key .* sample=2, t=4"):
        frame_sequences(inputs[(inputs["t"] != 4) | (inputs["sample"] != 2)], labels, "seq2static_regression", "x")


def test_label_problems_are_refused(tables):
    inputs, labels = tables
    with pytest.raises(TrainsetError, match="column 'sample' holds 99"):
        frame_sequences(inputs, labels.assign(sample=99), "seq2static_regression", "x")
    with pytest.raises(TrainsetError, match="no row for key"):
        frame_sequences(inputs, labels[labels["sample"] != 3], "seq2static_regression", "x")
    plain = inputs.copy()
    plain.attrs = {}  # a user's table: no recipe metadata
    with pytest.raises(TrainsetError, match="takes no labels"):
        frame_sequences(plain, labels, "reconstruction", "x")
    with pytest.raises(TrainsetError, match="needs a labels table"):
        frame_sequences(inputs, None, "seq2static_regression", "x")
    fractional = pd.DataFrame({"sample": range(5), "value": [0, 1, 2.5, 1, 0]})
    with pytest.raises(TrainsetError, match="class indices"):
        frame_sequences(plain, fractional, "seq2static_classification", "x")


def test_unknown_recipe_task_and_parameter_are_refused():
    with pytest.raises(TrainsetError, match="recipe 'noise' unknown"):
        make_sequence_tables("noise", 3, 0)
    with pytest.raises(TrainsetError, match="unknown parameter"):
        make_sequence_tables("forecast", 3, 0, horizn=4)
    inputs, labels = make_sequence_tables("pulses", 3, 0)
    with pytest.raises(TrainsetError, match="made for task 'seq2static_classification'"):
        frame_sequences(inputs, labels, "summary", "x")
    with pytest.raises(TrainsetError, match="task 'tagging' unknown"):
        frame_sequences(inputs, labels, "tagging", "x")
