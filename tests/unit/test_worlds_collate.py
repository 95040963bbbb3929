"""Mixed-world collation: padding, masks, order, and use inside a DataLoader."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr
from torch.utils.data import DataLoader, Dataset

from trainset.collection import Collection
from trainset.errors import TrainsetError
from trainset.loaders.worlds import collate_mixed_worlds, collate_single_world, pad_stack

WORLDS = {"nk": (4, 3), "var": (6, 2)}  # n_params, n_shocks


def two_worlds(n: int = 10) -> Collection:
    rng = np.random.default_rng(3)
    parts = {}
    for name, (params, shocks) in WORLDS.items():
        parts[name] = xr.Dataset(
            {"theta": (("sample", "param"), rng.uniform(1, 2, size=(n, params)).astype(np.float32)),
             "irfs": (("sample", "shock", "horizon", "variable"), rng.uniform(1, 2, size=(n, shocks, 41, 3)).astype(np.float32)),
             "weight": (("sample",), rng.uniform(size=n))},
            coords={"variable": ["output", "inflation", "rate"]},
        )  # fmt: skip
    return Collection(parts, attrs={"task": "irf"})


class Samples(Dataset):
    """Map-style dataset of dict samples straight from a collection."""

    def __init__(self, collection: Collection) -> None:
        self.collection = collection

    def __len__(self) -> int:
        return len(self.collection)

    def __getitem__(self, index: int) -> dict:
        return self.collection.sample(index)


def test_mixed_batch_pads_and_masks_every_shock():
    collection = two_worlds()
    order = [12, 0, 3, 19, 10]  # var, nk, nk, var, var
    samples = [collection.sample(i) for i in order]
    samples[1] = {k: torch.as_tensor(v) if isinstance(v, np.ndarray) else v for k, v in samples[1].items()}
    batch = collate_mixed_worlds(samples)
    assert batch["theta"].shape == (5, 6) and batch["theta_mask"].dtype == torch.bool
    assert batch["irfs"].shape == (5, 3, 41, 3) and batch["shock_mask"].shape == (5, 3)
    assert batch["index"].dtype == torch.int64 and batch["index"].tolist() == order
    assert batch["part"] == ["var", "nk", "nk", "var", "var"]
    assert "weight_mask" not in batch and batch["weight"].shape == (5,)
    for row, sample in enumerate(samples):
        params, shocks = WORLDS[sample["part"]]
        assert batch["theta_mask"][row].tolist() == [True] * params + [False] * (6 - params)
        assert batch["shock_mask"][row].tolist() == [True] * shocks + [False] * (3 - shocks)
        np.testing.assert_array_equal(batch["theta"][row, :params].numpy(), np.asarray(sample["theta"]))
        np.testing.assert_array_equal(batch["irfs"][row, :shocks].numpy(), np.asarray(sample["irfs"]))
        assert torch.all(batch["theta"][row, params:] == 0) and torch.all(batch["irfs"][row, shocks:] == 0)
    # every real shock is in the batch, not only shock 0
    assert int(batch["shock_mask"].sum()) == 2 + 3 + 3 + 2 + 2


def test_other_keys_follow_the_padding_rule():
    samples = [{"theta": np.ones(2), "irfs": np.ones((1, 4, 3)), "index": 5, "part": "a",
                "path": np.ones((3, 2)), "flag": np.int64(1), "name": "x"},
               {"theta": np.ones(3), "irfs": np.ones((2, 4, 3)), "index": 9, "part": "b",
                "path": np.full((1, 4), 2.0), "flag": np.int64(0), "name": "y", "extra": np.ones(2)}]  # fmt: skip
    batch = collate_mixed_worlds(samples)
    assert batch["path"].shape == (2, 3, 4) and batch["path_mask"].shape == (2, 3, 4)
    assert batch["path_mask"][0].sum() == 6 and batch["path_mask"][1].sum() == 4
    assert torch.all(batch["path"][batch["path_mask"] == 0] == 0)
    assert batch["flag"].tolist() == [1, 0] and "flag_mask" not in batch
    assert batch["name"] == ["x", "y"] and "extra" not in batch


def test_mixed_collate_refuses_inconsistent_irfs():
    base = {"theta": np.ones(2), "index": 0, "part": "a"}
    with pytest.raises(TrainsetError, match="horizons"):
        collate_mixed_worlds([{**base, "irfs": np.ones((1, 41, 3))}, {**base, "irfs": np.ones((1, 21, 3))}])
    with pytest.raises(TrainsetError, match="theta"):
        collate_mixed_worlds([{**base, "theta": np.ones((2, 2)), "irfs": np.ones((1, 41, 3))}])
    with pytest.raises(TrainsetError, match="empty"):
        collate_mixed_worlds([])


def test_single_world_collate_equals_stack():
    collection = two_worlds()
    samples = [collection.sample(i) for i in (4, 1, 7)]
    batch = collate_single_world(samples)
    for key in ("theta", "irfs", "weight"):
        torch.testing.assert_close(batch[key], torch.stack([torch.as_tensor(s[key]) for s in samples]), rtol=0, atol=0)
    assert batch["index"].tolist() == [4, 1, 7] and batch["part"] == ["nk"] * 3
    with pytest.raises(TrainsetError, match="collate_mixed_worlds"):
        collate_single_world([collection.sample(0), collection.sample(15)])
    broken = [dict(samples[0]), dict(samples[1])]
    broken[1]["theta"] = np.ones(5, np.float32)
    with pytest.raises(TrainsetError, match="shapes"):
        collate_single_world(broken)


def test_pad_stack_without_padding_returns_no_mask():
    batch, mask = pad_stack([np.zeros((2, 3)), torch.ones(2, 3)])
    assert mask is None and batch.shape == (2, 2, 3)
    with pytest.raises(TrainsetError, match="dimensions"):
        pad_stack([np.zeros(2), np.zeros((2, 1))])


def test_inside_a_dataloader():
    collection = two_worlds()
    loader = DataLoader(Samples(collection), batch_size=8, shuffle=True, collate_fn=collate_mixed_worlds,
                        generator=torch.Generator().manual_seed(0))
    seen = []
    for batch in loader:
        assert batch["theta"].shape[1] == 6 and batch["irfs"].shape[2:] == (41, 3)
        for row, index in enumerate(batch["index"].tolist()):
            sample = collection.sample(index)
            params, shocks = WORLDS[sample["part"]]
            assert batch["part"][row] == sample["part"]
            np.testing.assert_array_equal(batch["irfs"][row, :shocks].numpy(), sample["irfs"])
            assert int(batch["theta_mask"][row].sum()) == params
        seen += batch["index"].tolist()
    assert sorted(seen) == list(range(len(collection)))
