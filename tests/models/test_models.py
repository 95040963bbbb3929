"""Models: registry errors, forward shapes, losses that fall on demo data, masks and invariants."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from trainset.collection import Collection
from trainset.domains.flights import frame_flights, make_flight_table
from trainset.domains.macro.worlds import frame_worlds, simulate_worlds
from trainset.domains.sequences import RECIPES, frame_sequences, make_sequence_tables
from trainset.errors import TrainsetError
from trainset.loaders.worlds import collate_mixed_worlds
from trainset.models import MODELS, build_model, describe_dataset
from trainset.models.sequence import pool_time

FRAMES_INFO = {"task": "frames", "variables": {"frames": {"shape": [1, 53, 51], "dtype": "float32"}}}


# ------------------------------------------------------------------------------------ helpers


def loss_of(out: dict[str, torch.Tensor]) -> torch.Tensor:
    """A generic loss like the trainer's: CE on int targets (classes last), else masked MSE."""
    pred, target, mask = out["pred"], out["target"], out.get("mask")
    if not target.dtype.is_floating_point:
        return F.cross_entropy(pred.reshape(-1, pred.shape[-1]), target.reshape(-1))
    from trainset.train.losses import LOSSES  # the trainer's own masked MSE (mask on leading dims)

    return LOSSES["mse"](pred, target, mask)


def bce(out: dict[str, torch.Tensor]) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(out["pred"], out["target"])


def tensors(collection: Collection, rows: slice | np.ndarray = slice(None)) -> dict[str, torch.Tensor]:
    (part,) = collection.parts.values()
    return {k: torch.as_tensor(part[k].values[rows]) for k in part.data_vars}


def sequences(recipe: str, n: int) -> Collection:
    inputs, labels = make_sequence_tables(recipe, n, seed=0)
    return frame_sequences(inputs, labels, RECIPES[recipe], recipe)


def world_batches(collection: Collection, batch: int, seed: int = 0) -> list[dict]:
    order = np.random.default_rng(seed).permutation(len(collection))
    return [collate_mixed_worlds([collection.sample(int(i)) for i in order[s: s + batch]])
            for s in range(0, len(order), batch)]


def fit(model: torch.nn.Module, batches: list[dict], loss_fn, epochs: int, lr: float = 3e-3) -> tuple[float, float]:
    """Full-data loss before and after ``epochs`` passes of Adam (eval mode, fixed seed for both)."""

    def evaluate() -> float:
        torch.manual_seed(123)  # the diffusion loss draws t and noise: same draws before and after
        model.eval()
        with torch.no_grad():
            value = float(np.mean([float(loss_fn(model(b))) for b in batches]))
        model.train()
        return value

    before = evaluate()
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    torch.manual_seed(1)
    for _ in range(epochs):
        for b in batches:
            optimiser.zero_grad()
            loss = loss_fn(model(b))
            loss.backward()
            optimiser.step()
    return before, evaluate()


def split(data: dict[str, torch.Tensor], batch: int) -> list[dict[str, torch.Tensor]]:
    n = len(next(iter(data.values())))
    return [{k: v[s: s + batch] for k, v in data.items()} for s in range(0, n, batch)]


def smooth_frames(n: int, seed: int = 0) -> torch.Tensor:
    """Epidemic-like frames [n, 1, 53, 51]: a Gaussian season curve per place, scaled to ~[0, 2]."""
    rng = np.random.default_rng(seed)
    week = np.arange(53)[None, :, None]
    peak = rng.uniform(15, 30, (n, 1, 1)) + rng.normal(0, 2, (n, 1, 51))
    height = rng.uniform(0.5, 2.0, (n, 1, 51))
    frames = height * np.exp(-0.5 * ((week - peak) / rng.uniform(3, 6, (n, 1, 1))) ** 2)
    return torch.as_tensor(frames[:, None].astype(np.float32))


@pytest.fixture(scope="module")
def flights() -> tuple[dict, dict[str, torch.Tensor]]:
    collection = frame_flights(make_flight_table(n_sites=5, years=1), "flights")
    data = tensors(collection)
    features = data["features"]
    data["features"] = (features - features.mean(0)) / (features.std(0) + 1e-6)  # the loader's scaler
    return describe_dataset(collection), data


@pytest.fixture(scope="module")
def worlds() -> Collection:
    theta, irfs, metadata = simulate_worlds({"nk": 40, "var": 40}, seed=0)
    return frame_worlds(theta, irfs, metadata)


# ------------------------------------------------------------------------------------ registry


def test_registry_names_and_unknown_model():
    assert sorted(MODELS) == ["diffusion", "flight", "mlp", "sequence", "world_mlp"]
    with pytest.raises(TrainsetError, match="unknown model 'transformer'.*diffusion.*world_mlp"):
        build_model("transformer", {}, FRAMES_INFO)


@pytest.mark.parametrize("name, params, match", [
    ("diffusion", {"stepz": 10}, r"unknown param\(s\) \['stepz'\].*base_channels"),
    ("sequence", {"kind": "lstm"}, "kind='lstm'.*gru"),
    ("sequence", {"time_pooling": {"name": "median"}}, "time_pooling.name"),
    ("sequence", {"time_pooling": {"name": "mean", "params": {"k": 3}}}, r"unknown param\(s\) \['k'\]"),
    ("sequence", {"hidden": 0}, "hidden must be an integer >= 1"),
    ("flight", {"head": "softmax"}, "head='softmax'.*ordinal"),
    ("mlp", {"hidden": [64, "x"]}, "list of positive integers"),
    ("diffusion", {"base_channels": 12}, "multiple of groups"),
])
def test_bad_params_raise(name, params, match, flights):
    info = {"sequence": describe_dataset(sequences("pulses", 8)), "flight": flights[0]}.get(name, FRAMES_INFO)
    with pytest.raises(TrainsetError, match=match):
        build_model(name, params, info)


def test_model_for_wrong_dataset_raises(flights):
    with pytest.raises(TrainsetError, match="not a sequence task"):
        build_model("sequence", {}, flights[0])
    with pytest.raises(TrainsetError, match="no 'worlds'"):
        build_model("world_mlp", {}, flights[0])
    with pytest.raises(TrainsetError, match="no variable 'frames'"):
        build_model("diffusion", {}, flights[0])


def test_describe_dataset_from_a_stored_file(tmp_path, worlds):
    from trainset import open_dataset
    from trainset.io import get_format

    for collection, fmt in ((sequences("labelling", 16), "hdf5"), (worlds, "netcdf")):
        path = tmp_path / f"TS_x{get_format(fmt).suffix}"
        get_format(fmt).write(collection, path)
        assert describe_dataset(open_dataset(path)) == describe_dataset(collection)
    info = describe_dataset(worlds)
    assert info["task"] == "irf" and info["parts"] == ["nk", "var"]
    assert info["worlds"] == {"nk": {"theta": [12], "irfs": [3, 41, 3]}, "var": {"theta": [24], "irfs": [3, 41, 3]}}
    assert info["variables"]["theta"]["shape"] == [24]  # the padded batch's width


def test_init_is_seeded_by_torch_manual_seed_only(flights):
    weights, saved = [], np.random.get_state()
    for numpy_seed in (1, 2):
        torch.manual_seed(7)
        np.random.seed(numpy_seed)  # numpy's global state must not matter
        weights.append(build_model("flight", {"head": "ordinal"}, flights[0]).state_dict())
    np.random.set_state(saved)
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_config_rebuilds_the_model(flights):
    torch.manual_seed(0)
    model = build_model("flight", {"cross_layers": 1}, flights[0])
    config = model.config()
    assert config["params"]["cross_layers"] == 1 and config["params"]["head"] == "independent"
    again = build_model(config["name"], config["params"], config["info"])
    again.load_state_dict(model.state_dict())


# ------------------------------------------------------------------------------------ forward shapes


@pytest.mark.parametrize("recipe", list(RECIPES))
@pytest.mark.parametrize("name, params", [("sequence", {"kind": "gru"}), ("sequence", {"kind": "tcn"}),
                                          ("mlp", {"hidden": [16]})])
def test_sequence_forward_shapes(recipe, name, params):
    collection = sequences(recipe, 12)
    info = describe_dataset(collection)
    torch.manual_seed(0)
    out = build_model(name, params, info)(tensors(collection))
    pred, target = out["pred"], out["target"]
    if target.dtype == torch.int64:  # logits, classes last
        assert pred.shape == (*target.shape, info["num_classes"])
    else:
        assert pred.shape == target.shape
    if recipe == "reconstruction":
        assert torch.equal(target, tensors(collection)["data"])
    if recipe == "forecast":
        assert pred.shape == (12, 8, 3)  # T' = 8 != T = 64: the last-state head
    assert torch.isfinite(loss_of(out))


@pytest.mark.parametrize("name", ["final", "mean", "max", "mean_last_n"])
def test_time_pooling(name):
    h = torch.arange(12, dtype=torch.float32).reshape(1, 6, 2)  # steps 0..5, values 2t and 2t + 1
    expected = {"final": [10, 11], "mean": [5, 6], "max": [10, 11], "mean_last_n": [8, 9]}[name]
    assert pool_time(h, name, scale=2.0, n=3).tolist() == [[2.0 * v for v in expected]]


@pytest.mark.parametrize("name", ["final", "mean", "max", "mean_last_n"])
def test_masked_time_pooling_ignores_padded_steps(name):
    torch.manual_seed(0)
    h = torch.randn(2, 9, 3)
    mask = torch.zeros(2, 9, dtype=torch.bool)
    mask[0, :6], mask[1, :9] = True, True
    pooled = pool_time(h, name, scale=0.5, n=4, mask=mask)
    assert torch.allclose(pooled[0], pool_time(h[:1, :6], name, scale=0.5, n=4)[0])
    assert torch.allclose(pooled[1], pool_time(h[1:], name, scale=0.5, n=4)[0])


@pytest.mark.parametrize("recipe", ["pulses", "forecast", "labelling"])
@pytest.mark.parametrize("kind", ["gru", "tcn"])
def test_padding_with_time_mask_changes_nothing(recipe, kind):
    """Steps padded to target_seq_len (with the trainer's time_mask) never reach a prediction."""
    collection = sequences(recipe, 4)
    torch.manual_seed(0)
    model = build_model("sequence", {"kind": kind, "hidden": 8, "time_pooling": {"name": "final"}},
                        describe_dataset(collection))
    batch = tensors(collection)
    plain = model(batch)
    padded = dict(batch, data=F.pad(batch["data"], (0, 0, 0, 5), value=7.0))
    padded["time_mask"] = torch.arange(69)[None, :].expand(4, 69) < 64
    if recipe == "labelling":
        padded["labels"] = F.pad(batch["labels"], (0, 5))
    out = model(padded)
    steps = out["pred"].shape[1] if recipe == "labelling" else None
    assert torch.allclose(out["pred"][:, :64] if steps else out["pred"], plain["pred"], atol=1e-6)
    if recipe == "labelling":
        assert torch.equal(out["mask"], padded["time_mask"])


def test_token_inputs_are_one_hot_and_bad_ids_raise():
    info = {"task": "seq2static_classification", "num_classes": 2, "vocab_size": 5,
            "variables": {"data": {"shape": [7, 1], "dtype": "int64"}, "labels": {"shape": [], "dtype": "int64"}}}
    torch.manual_seed(0)
    model = build_model("sequence", {"hidden": 8}, info)
    tokens = torch.randint(0, 5, (3, 7, 1))
    assert model({"data": tokens, "labels": torch.zeros(3, dtype=torch.int64)})["pred"].shape == (3, 2)
    assert model({"data": tokens[..., 0], "labels": torch.zeros(3, dtype=torch.int64)})["pred"].shape == (3, 2)
    tokens[1, 4, 0] = 5
    with pytest.raises(TrainsetError, match="outside 0..4"):
        model({"data": tokens, "labels": torch.zeros(3, dtype=torch.int64)})


@pytest.mark.parametrize("head", ["independent", "ordinal"])
def test_flight_forward_shapes(head, flights):
    info, data = flights
    torch.manual_seed(0)
    out = build_model("flight", {"head": head}, info)(split(data, 16)[0])
    assert out["pred"].shape == out["target"].shape == (16, 11)
    assert torch.isfinite(bce(out))


def test_flight_site_out_of_range_raises(flights):
    info, data = flights
    batch = split(data, 4)[0]
    batch["site"] = torch.tensor([0, 1, 2, 5])
    with pytest.raises(TrainsetError, match="site index 5 outside 0..4"):
        build_model("flight", {}, info)(batch)


def test_ordinal_head_is_monotone_for_random_inputs(flights):
    info, _ = flights
    torch.manual_seed(0)
    model = build_model("flight", {"head": "ordinal", "hidden": [32]}, info)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 1.0)  # arbitrary weights, not just the initial ones
    features = 10 * torch.randn(500, info["variables"]["features"]["shape"][0])
    logits = model.logits(features, torch.randint(0, 5, (500,)))
    assert logits.shape == (500, 11) and torch.isfinite(logits).all()
    assert (logits.diff(dim=1) <= 0).all()
    assert (torch.sigmoid(logits).diff(dim=1) <= 0).all()


def test_diffusion_forward_pads_and_sample_crops():
    torch.manual_seed(0)
    model = build_model("diffusion", {"base_channels": 8}, FRAMES_INFO)
    out = model({"frames": smooth_frames(3)})
    assert out["pred"].shape == out["target"].shape == (3, 1, 64, 64)
    assert torch.isfinite(loss_of(out))
    drawn = model.sample(2, generator=torch.Generator().manual_seed(0), steps=10)
    assert drawn.shape == (2, 1, 53, 51) and torch.isfinite(drawn).all()
    again = model.sample(2, generator=torch.Generator().manual_seed(0), steps=10)
    assert torch.equal(drawn, again) and model.training


def test_diffusion_sampling_steps_count_and_are_bounded():
    """Fewer steps draw other frames from the same noise; more steps than the model has, one
    step (it would leave the starting noise), or a non-integer, are refused by name (never cut
    to the model's count silently). The frames are plain tensors drawn without autograd."""
    torch.manual_seed(0)
    model = build_model("diffusion", {"steps": 20, "base_channels": 8}, FRAMES_INFO)
    short, full = (model.sample(2, generator=torch.Generator().manual_seed(0), steps=s) for s in (5, 20))
    assert not torch.equal(short, full)
    assert torch.equal(full, model.sample(2, generator=torch.Generator().manual_seed(0)))  # default: all 20
    assert not short.requires_grad and not short.is_inference() and short.grad_fn is None
    assert model.sample(1, steps=2).shape[0] == 1  # the fewest: the first and the last timestep
    for bad in (21, 1, 0, 2.5, True):
        with pytest.raises(TrainsetError, match=r"sampling steps.*from 2 to 20.*evaluation.sample_steps"):
            model.sample(1, steps=bad)


def test_the_workflow_knows_the_frames_model_and_its_default_steps():
    """common.smk checks evaluation.sample_steps against them at start-up, without importing torch."""
    from trainset.models.diffusion import FrameDiffusion
    from trainset.tasks import TASKS
    from trainset.workflow import DIFFUSION_STEPS, FRAMES_MODEL

    assert [name for name, spec in TASKS.items() if spec.generative] == ["frames"]
    assert TASKS["frames"].model == FRAMES_MODEL == FrameDiffusion.name
    assert FrameDiffusion.DEFAULTS["steps"] == DIFFUSION_STEPS


def test_diffusion_schedule_ends_in_noise():
    torch.manual_seed(0)
    model = build_model("diffusion", {"steps": 200, "base_channels": 8}, FRAMES_INFO)
    assert float(model.alpha_bar[-1]) < 1e-3 and 0.99 < float(model.alpha_bar[0]) < 1.0


# ------------------------------------------------------------------------------------ worlds


def three_worlds(worlds: Collection) -> tuple[dict, list[dict]]:
    """nk, var and 'nk2' (nk's samples with two shocks): shock counts differ within a batch."""
    samples = []
    for i in range(len(worlds)):
        sample = worlds.sample(i)
        samples.append(sample)
        if sample["part"] == "nk" and i % 2 == 0:
            samples.append({**sample, "irfs": sample["irfs"][:2], "part": "nk2"})
    info = describe_dataset(worlds)
    info["worlds"]["nk2"] = {"theta": [12], "irfs": [2, 41, 3]}
    return info, samples


def test_world_mlp_padded_shocks_never_count_and_every_shock_learns(worlds):
    info, samples = three_worlds(worlds)
    batch = collate_mixed_worlds([samples[i] for i in (0, 1, 2, 3, 40, 50, 61)])
    assert set(batch["part"]) == {"nk", "nk2", "var"}
    torch.manual_seed(0)
    model = build_model("world_mlp", {"hidden": [32]}, info)
    out = model(batch)
    assert out["pred"].shape == out["target"].shape == batch["irfs"].shape
    padded = ~batch["shock_mask"]
    assert padded.any() and torch.equal(out["mask"], batch["shock_mask"])
    assert (out["pred"][padded] == 0).all()
    loss = loss_of(out)
    changed = dict(batch, irfs=batch["irfs"].clone())
    changed["irfs"][padded] = 1e3
    assert torch.equal(loss_of(model(changed)), loss)
    loss.backward()
    for world, (_, shape) in model.shapes.items():
        last = model.nets[world][-1].weight.grad.reshape(*shape, -1)  # [S, H+1, V, hidden]
        per_shock = last.abs().sum(dim=(1, 2, 3))
        assert (per_shock > 0).all(), f"{world}: a shock got no gradient"


def test_world_mlp_state_carries_the_world_list(worlds):
    info = describe_dataset(worlds)
    torch.manual_seed(0)
    model = build_model("world_mlp", {}, info)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert state["_extra_state"]["worlds"] == ["nk", "var"]
    build_model("world_mlp", {}, info).load_state_dict(state)
    swapped = dict(info, worlds={"var": info["worlds"]["var"], "nk": info["worlds"]["nk"]})
    with pytest.raises(TrainsetError, match=r"trained on worlds \['var', 'nk'\], but given \['nk', 'var'\]"):
        build_model("world_mlp", {}, swapped).load_state_dict(state)
    with pytest.raises(TrainsetError, match=r"world\(s\) \['lss'\]"):
        model({**collate_mixed_worlds([worlds.sample(0)]), "part": ["lss"]})


# ------------------------------------------------------------------------------------ losses fall


@pytest.mark.parametrize("name, params, recipe", [
    ("sequence", {"kind": "gru", "hidden": 32, "layers": 1, "time_pooling": {"name": "max"}}, "pulses"),
    ("sequence", {"kind": "tcn", "hidden": 32, "layers": 3}, "pulses"),
    ("sequence", {"kind": "tcn", "hidden": 32, "layers": 3}, "forecast"),
    ("sequence", {"kind": "gru", "hidden": 32, "layers": 1}, "forecast"),
    ("sequence", {"kind": "gru", "hidden": 32, "layers": 1}, "labelling"),
    ("sequence", {"kind": "tcn", "hidden": 32, "layers": 3}, "statistics"),
    ("sequence", {"kind": "gru", "hidden": 32, "layers": 1}, "summary"),
    ("sequence", {"kind": "tcn", "hidden": 32, "layers": 3}, "reconstruction"),
    ("mlp", {"hidden": [64]}, "forecast"),
])
def test_sequence_loss_falls(name, params, recipe):
    collection = sequences(recipe, 200)
    torch.manual_seed(0)
    model = build_model(name, params, describe_dataset(collection))
    before, after = fit(model, split(tensors(collection), 50), loss_of, epochs=5, lr=1e-2)
    assert after < 0.8 * before, (before, after)


@pytest.mark.parametrize("head", ["independent", "ordinal"])
def test_flight_loss_falls(head, flights):
    info, data = flights
    torch.manual_seed(0)
    model = build_model("flight", {"head": head, "hidden": [64, 32]}, info)
    before, after = fit(model, split(data, 256), bce, epochs=3)
    assert after < 0.8 * before, (before, after)


def test_world_mlp_loss_falls(worlds):
    torch.manual_seed(0)
    model = build_model("world_mlp", {"hidden": [64, 64]}, describe_dataset(worlds))
    before, after = fit(model, world_batches(worlds, 16), loss_of, epochs=5)
    assert after < 0.8 * before, (before, after)


def test_diffusion_loss_falls():
    torch.manual_seed(0)
    model = build_model("diffusion", {"base_channels": 8}, FRAMES_INFO)
    before, after = fit(model, split({"frames": smooth_frames(32)}, 16), loss_of, epochs=4)
    assert after < 0.8 * before, (before, after)
