"""Generated-frames evaluation: the two US grids are separate, full-size figures, results first."""

from __future__ import annotations

import struct
from types import SimpleNamespace

import torch

from tests.seeds.flu_files import flu_mix
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
    metrics, (section,) = generated_frames(Drawer(frames), cfg, path, "test", None, 4)
    grids = section.figures[:2]
    assert [f.title for f in grids] == ["US grid: generated frames", "US grid: held-out frames"]
    for figure in grids:
        width, height = struct.unpack(">II", figure.png[16:24])
        assert width >= 1400 and height >= 1000  # a whole grid each, not half of one image
    assert "test" in grids[1].caption
    judged = verdict(TASKS["frames"], metrics)
    assert judged.outcome == "no baseline" and "no baseline" in judged.sentence()
