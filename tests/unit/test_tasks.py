"""Task types (shapes, dtypes, values of every seed's tasks) and one-hot token encoding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainset.errors import TrainsetError
from trainset.io.base import PartInfo, Reader, VariableInfo
from trainset.tasks import TASKS, check_task, describe_tasks, get_task, guess_task, sequence_tasks
from trainset.tokens import one_hot


class ArrayReader(Reader):
    """Parts held in memory; records every read so tests can see the blocks."""

    def __init__(self, parts: dict[str, dict[str, np.ndarray]], block_size: int = 8) -> None:
        self._arrays, self.block_size, self.calls = parts, block_size, []

    @property
    def parts(self) -> list[PartInfo]:
        return [part_info(name, arrays) for name, arrays in self._arrays.items()]

    def read(self, part, local, variables=None):
        self.calls.append((part, local.copy()))
        arrays = list(self._arrays.values())[part]
        return {v: arrays[v][local] for v in (variables or arrays)}


def part_info(name: str, arrays: dict[str, np.ndarray]) -> PartInfo:
    size = len(next(iter(arrays.values())))
    return PartInfo(name, size, {k: VariableInfo(a.shape[1:], a.dtype) for k, a in arrays.items()})


def check(arrays: dict[str, np.ndarray], task: str, values: bool = True, **kwargs) -> list[str]:
    reader = ArrayReader({"all": arrays})
    return check_task(reader.parts, task, reader=reader if values else None, **kwargs)


RNG = np.random.default_rng(5)
N, T, D = 40, 12, 3
DATA = RNG.normal(size=(N, T, D)).astype(np.float32)
GOOD_LABELS = {
    "seq2static_classification": RNG.integers(0, 3, N),
    "seq2static_regression": RNG.normal(size=(N, 2)).astype(np.float32),
    "seq2seq_classification": RNG.integers(0, 3, (N, T)),
    "seq2seq_regression": RNG.normal(size=(N, 4, 2)).astype(np.float32),  # horizon 4 != T: allowed
    "reconstruction": None,
    "summary": RNG.normal(size=(N, 3)).astype(np.float32),
}


@pytest.mark.parametrize("task", list(GOOD_LABELS))
def test_seed_001_tasks_accept_their_layout(task):
    arrays = {"data": DATA} if GOOD_LABELS[task] is None else {"data": DATA, "labels": GOOD_LABELS[task]}
    assert check(arrays, task, num_classes=3) == []


@pytest.mark.parametrize("alias, name", [
    ("supervised_seq2static_classification", "seq2static_classification"),
    ("Supervised-Seq2Seq-Regression", "seq2seq_regression"),
    ("self_supervised_seq2seq_reconstruction", "reconstruction"),
    ("self_supervised_seq2static_summary", "summary"),
])
def test_long_names_map_to_tasks(alias, name):
    assert get_task(alias).name == name


def test_unknown_task_lists_valid_names():
    with pytest.raises(TrainsetError) as caught:
        check_task([], "seq2pixel")
    assert all(name in str(caught.value) for name in TASKS)


@pytest.mark.parametrize("task, labels, words", [
    ("seq2static_classification", RNG.normal(size=N).astype(np.float32),
     "dtype float32, but seq2static_classification needs int64"),
    ("seq2static_classification", RNG.integers(0, 3, (N, T)), "would fit seq2seq_classification"),
    ("seq2static_classification", RNG.integers(0, 3, N).astype(np.int32), ".astype('int64')"),
    ("seq2seq_classification", RNG.integers(0, 3, N), "needs labels [N, T=12] int64"),
    ("seq2seq_classification", RNG.integers(0, 3, (N, T + 1)), "needs labels [N, T=12] int64"),
    ("seq2static_regression", RNG.integers(0, 9, (N, 2)), "never cast them to integers"),
    ("seq2static_regression", RNG.normal(size=(N, 2)), "store it with .astype('float32')"),
    ("seq2seq_regression", RNG.normal(size=(N, 2)).astype(np.float32), "would fit seq2static_regression or summary"),
    ("summary", RNG.normal(size=(N, 2, 2)).astype(np.float32), "would fit seq2seq_regression"),
])
def test_wrong_labels_get_one_specific_message(task, labels, words):
    problems = check({"data": DATA, "labels": labels}, task, num_classes=3)
    assert len(problems) == 1 and words in problems[0] and "Fix:" in problems[0], problems


def test_missing_and_wrong_inputs():
    assert "variable 'labels': missing" in check({"data": DATA}, "summary")[0]
    assert "dtype float64" in check({"data": DATA.astype(np.float64)}, "reconstruction")[0]
    assert "shape [40, 12]" in check({"data": DATA[..., 0]}, "reconstruction")[0]
    # reconstruction ignores whatever labels are there
    assert check({"data": DATA, "labels": np.zeros((N, 7))}, "reconstruction") == []


def test_value_checks_scan_blocks_and_name_the_first_bad_sample():
    data, labels = DATA.copy(), RNG.integers(0, 3, N)
    data[33, 2, 1] = np.nan
    labels[[21, 30]] = [5, -1]
    reader = ArrayReader({"all": {"data": data, "labels": labels}}, block_size=8)
    problems = check_task(reader.parts, "seq2static_classification", reader=reader, num_classes=3)
    assert len(problems) == 3
    assert "1 value(s) are NaN or infinite (first at sample 33, position [2, 1])" in problems[0]
    assert "1 value(s) are negative class ids (first at sample 30)" in problems[1]
    assert "1 value(s) are >= num_classes=3 (first at sample 21)" in problems[2]
    assert all(np.all(np.diff(local) == 1) for _, local in reader.calls)  # whole contiguous blocks
    # without num_classes only negative ids are wrong; without a reader, no values are read
    assert len(check({"data": data, "labels": labels}, "seq2static_classification")) == 2
    assert check({"data": data, "labels": labels}, "seq2static_classification", values=False) == []


@pytest.mark.parametrize("shape", [(N, T), (N, T, 1)])
def test_token_inputs(shape):
    tokens = RNG.integers(0, 100, shape)
    labels = RNG.integers(0, 3, (N, T))
    assert check({"data": tokens, "labels": labels}, "seq2seq_classification", vocab_size=100) == []
    tokens[7, 3] = 100
    problems = check({"data": tokens, "labels": labels}, "seq2seq_classification", vocab_size=100)
    assert len(problems) == 1 and "token ids outside 0..99 (first at sample 7, position [3" in problems[0]
    assert "needs an integer dtype" in check({"data": DATA, "labels": labels}, "seq2seq_classification",
                                             vocab_size=100)[0]
    with pytest.raises(TrainsetError, match="vocab_size"):
        check({"data": tokens}, "reconstruction", vocab_size=0)
    with pytest.raises(TrainsetError, match="num_classes"):
        check({"data": DATA}, "reconstruction", num_classes=-2)


def test_other_seeds_tasks():
    frames = RNG.uniform(size=(10, 2, 53, 51)).astype(np.float32)
    assert check({"frames": frames}, "frames") == []
    assert "needs frames [N, F, W, P] float32" in check({"frames": frames[:, 0]}, "frames")[0]
    worlds = {"nk": {"theta": RNG.uniform(size=(6, 4)).astype(np.float32),
                     "irfs": RNG.normal(size=(6, 3, 41, 3)).astype(np.float32)},
              "var": {"theta": RNG.uniform(size=(5, 6)).astype(np.float32),
                      "irfs": RNG.normal(size=(5, 2, 41, 3)).astype(np.float32)}}
    reader = ArrayReader(worlds)
    assert check_task(reader.parts, "irf", reader=reader) == []
    worlds["var"]["irfs"] = worlds["var"]["irfs"].astype(np.float64)
    problems = check_task(ArrayReader(worlds).parts, "irf")
    assert len(problems) == 1 and problems[0].startswith("part 'var', variable 'irfs': dtype float64")
    features = RNG.normal(size=(20, 9)).astype(np.float32)
    targets = (RNG.uniform(size=(20, 11)) > 0.5).astype(np.float32)
    assert check({"features": features, "targets": targets}, "thresholds") == []
    targets[4, 2] = 0.5
    assert "neither 0 nor 1 (first at sample 4, position [2])" in check({"features": features, "targets": targets},
                                                                        "thresholds")[0]


def test_describe_tasks_lists_every_task():
    lines = describe_tasks()
    assert len(lines) == len(TASKS)
    assert any(line.startswith("seq2seq_classification") and "labels [N, T] int64" in line for line in lines)


# ---------------------------------------------------------------- the registry of task facts

@pytest.mark.parametrize("name", list(TASKS))
def test_every_task_has_all_facts(name):
    from trainset.scalers import KINDS

    spec = TASKS[name]
    variables = {rule.name for rule in spec.rules}
    assert spec.description and spec.rules and spec.metric and spec.evaluation
    assert spec.direction in ("min", "max")
    assert spec.baseline is None or spec.baseline.startswith("baseline_")
    scalers = spec.default_scalers()
    assert scalers and set(scalers) <= variables and set(scalers.values()) <= set(KINDS)
    assert spec.target_scaler is None or spec.target_scaler in scalers
    if spec.generative:  # draws samples: nothing to compare predictions with
        assert spec.target is None
    else:
        assert spec.target in variables and spec.target_scaler in (None, spec.target)
    assert spec.per_part == (name == "irf")  # macro worlds: one part, with its own shapes, per world
    labels = [rule for rule in spec.rules if rule.name == "labels"]
    if spec.sequence is None:  # recognised by its variables when a dataset stores no task
        assert guess_task(variables) == name and spec.labels_table is None and not spec.tokens
    else:
        assert spec.sequence in ("static", "seq2seq") and spec.static != spec.seq2seq and spec.tokens
        keys_and_dims = spec.labels_table
        assert (keys_and_dims is not None) == labels[0].required
        if keys_and_dims is not None:
            assert keys_and_dims[0][0] == "sample" and len(keys_and_dims[1]) == len(labels[0].shapes[0])


@pytest.mark.parametrize("name", list(TASKS))
def test_evaluation_handlers_named_by_the_registry_resolve(name):
    import inspect

    from trainset.evaluate.stage import resolve_handler

    spec = TASKS[name]
    handler = resolve_handler(spec.evaluation)
    wanted = ["model", "cfg", "dataset_path", "split", "scalers", "n", "steps"] if spec.generative else \
        ["p", "train", "test", "info"]
    assert list(inspect.signature(handler).parameters) == wanted
    if spec.split_scores:
        assert callable(resolve_handler(spec.split_scores))


def test_unresolvable_handler_is_a_clear_error():
    from trainset.evaluate.stage import resolve_handler

    with pytest.raises(TrainsetError, match="not found. Fix:"):
        resolve_handler("trainset.evaluate.tasks:no_such_handler")


def test_sequence_tasks_and_guessing_follow_the_registry():
    assert sequence_tasks() == ("seq2static_classification", "seq2static_regression", "seq2seq_classification",
                                "seq2seq_regression", "reconstruction", "summary")
    assert guess_task({"theta", "irfs", "frames"}) == "irf"  # irf before frames, as always
    assert guess_task({"frames", "features", "targets"}) == "frames"
    assert guess_task({"data", "labels"}) is None


def test_registry_and_evaluate_modules_import_light_and_acyclic():
    import subprocess
    import sys

    code = ("import sys, trainset.tasks; heavy = [m for m in ('torch', 'matplotlib') if m in sys.modules]; "
            "assert not heavy, heavy; import trainset.evaluate.tasks; "
            "assert 'trainset.evaluate.stage' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# ---------------------------------------------------------------- one-hot tokens

@pytest.mark.parametrize("shape", [(3, 5), (3, 5, 1)])
def test_one_hot_numpy_and_torch(shape):
    tokens = RNG.integers(0, 7, shape)
    encoded = one_hot(tokens, 7)
    assert encoded.dtype == np.float32 and encoded.shape == (3, 5, 7)
    np.testing.assert_array_equal(encoded.argmax(-1), tokens.reshape(3, 5))
    assert np.all(encoded.sum(-1) == 1)
    tensor = one_hot(torch.from_numpy(tokens), 7)
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float32
    np.testing.assert_array_equal(tensor.numpy(), encoded)


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_one_hot_refuses_bad_ids_never_clips(kind):
    tokens = np.zeros((4, 6), dtype=np.int64)
    tokens[2, 3], tokens[3, 0] = 9, -1
    value = torch.from_numpy(tokens) if kind == "torch" else tokens
    with pytest.raises(TrainsetError) as caught:
        one_hot(value, 9)
    message = str(caught.value)
    assert "2 token id(s) outside 0..8" in message and "sample 2, step 3: 9" in message and "Fix:" in message


@pytest.mark.parametrize("bad", [np.zeros((2, 3), dtype=np.float32), np.zeros((2, 3, 2), dtype=np.int64),
                                 torch.zeros(2, 3), torch.zeros(2, dtype=torch.long)])
def test_one_hot_refuses_wrong_shape_or_dtype(bad):
    with pytest.raises(TrainsetError, match="token ids must"):
        one_hot(bad, 4)
