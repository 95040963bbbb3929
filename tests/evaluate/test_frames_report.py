"""Generated-frames evaluation: the two US grids are separate, full-size figures, results first."""

from __future__ import annotations

import struct
from types import SimpleNamespace

import pytest
import torch

from tests.seeds.flu_files import flu_mix
from trainset.errors import TrainsetError
from trainset.evaluate.tasks import generated_frames
from trainset.evaluate.verdict import verdict
from trainset.io.netcdf import open_netcdf_array
from trainset.tasks import TASKS


class Drawer:
    """Stands in for the diffusion model: 'draws' the held-out frames, slightly scaled."""

    def __init__(self, frames: torch.Tensor) -> None:
        self.frames = frames

    def sample(self, n: int, generator: torch.Generator, steps: int) -> torch.Tensor:
        return self.frames[torch.arange(n) % len(self.frames)] * 1.1


def test_generated_and_held_out_grids_are_two_readable_figures(tmp_path, axis, table_factory) -> None:
    path, _, _ = flu_mix(tmp_path / "d", axis, table_factory)
    frames = torch.as_tensor(open_netcdf_array(path).values)
    cfg = SimpleNamespace(training=SimpleNamespace(seed=0))
    metrics, (section,) = generated_frames(Drawer(frames), cfg, path, "test", None, 4, 10)
    grids = section.figures[:2]
    assert [f.title for f in grids] == ["US grid: generated frames", "US grid: held-out frames"]
    for figure in grids:
        width, height = struct.unpack(">II", figure.png[16:24])
        assert width >= 1400 and height >= 1000  # a whole grid each, not half of one image
    assert "test" in grids[1].caption
    judged = verdict(TASKS["frames"], metrics)
    assert judged.outcome == "no baseline" and "no baseline" in judged.sentence()


def test_sample_steps_reach_the_drawn_frames_and_metrics(tmp_path, axis, table_factory) -> None:
    """``evaluation.sample_steps`` (evaluate_run's ``sample_steps``) changes metrics.json: the
    frames are drawn with that many steps, and the count is recorded beside the scores."""
    import json

    from trainset.evaluate.stage import evaluate_run
    from trainset.train.config import TrainingConfig
    from trainset.train.run import train_run

    path, _, _ = flu_mix(tmp_path / "d", axis, table_factory)
    run = {"name": "diff", "model": {"name": "diffusion", "params": {"steps": 8, "base_channels": 8}},
           "training": {"losses": [{"name": "mse"}], "epochs": 1, "batch_size": 4, "device": "cpu"}}
    train_run(TrainingConfig.from_dict(run), path, tmp_path / "run", None)
    pages, metrics = {}, {}
    for steps in (2, 8):
        evaluate_run(run, tmp_path / "run", path, None, tmp_path / f"r{steps}", generated=4, sample_steps=steps)
        metrics[steps] = json.loads((tmp_path / f"r{steps}/metrics.json").read_text())["metrics"]
        pages[steps] = (tmp_path / f"r{steps}/report.html").read_text()
    assert metrics[2]["sample_steps"] == 2 and metrics[8]["sample_steps"] == 8
    assert metrics[2]["peak_size"] != metrics[8]["peak_size"]  # other frames, not just another label
    assert "(2 sampling steps)" in pages[2] and "(8 sampling steps)" in pages[8]
    too_many = r"9 sampling steps; expected an integer from 2 to 8.*--sample-steps"
    for steps, generated, match in ((9, 4, too_many), (None, 4, "sample_steps=None"), (4, None, "generated=None")):
        with pytest.raises(TrainsetError, match=match):  # before any frame is drawn: nothing written
            evaluate_run(run, tmp_path / "run", path, None, tmp_path / "bad", generated=generated, sample_steps=steps)
        assert not (tmp_path / "bad").exists()
