"""A small denoising diffusion model (DDPM) for flu frames: learn to draw new epidemic seasons.

Data: ``frames`` ``[B, F, W, P]`` (feature x season week x place; F = 1), already scaled by the
loader's transform (e.g. ``sqrt_max``: values in about [0, 2]). Frames smaller than the canvas
(53 x 51 without ``pad_to``) are zero-padded to the 64 x 64 canvas inside the model; the noise is
drawn and predicted on the whole canvas, so the model also learns that the padding is zero and
sampling keeps it there; :meth:`FrameDiffusion.sample` crops back to the frames' size.

Training (``forward``): draw a timestep ``t`` and Gaussian noise ``eps`` with torch's global RNG
(seeded by the caller), form ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps`` and return
``pred`` = the U-Net's noise estimate, ``target`` = ``eps`` (so an MSE loss is the DDPM loss).

Schedule: linear betas from ``beta_start`` to ``beta_end`` scaled by ``1000 / steps`` (Nichol &
Dhariwal's scaling), so ``abar`` at the last step is ~0 for any ``steps``: with the unscaled
1e-4..0.02 and 200 steps it would still be 0.13, and sampling would start from the wrong
distribution.

Network: a compact U-Net (~200k weights at ``base_channels: 16``): residual blocks with
GroupNorm and SiLU, a sinusoidal time embedding added in every block, two stride-2 downsamplings
(64 -> 32 -> 16) and two nearest-neighbour upsamplings with skip connections.
"""

from __future__ import annotations

import logging
import math
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from trainset.errors import TrainsetError
from trainset.models.mlp import ConfiguredModel, check_float, check_int, resolve_params, variable

logger = logging.getLogger(__name__)

__all__ = ["FrameDiffusion", "UNet", "timestep_embedding"]


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding ``[B, dim]`` of integer timesteps (as in the Transformer and DDPM)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class _ResBlock(nn.Module):
    """GroupNorm -> SiLU -> conv, + time embedding, GroupNorm -> SiLU -> conv, + skip."""

    def __init__(self, cin: int, cout: int, tdim: int, groups: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(groups, cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.time = nn.Linear(tdim, cout)
        self.norm2, self.conv2 = nn.GroupNorm(groups, cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x))) + self.time(F.silu(temb))[:, :, None, None]
        return self.skip(x) + self.conv2(F.silu(self.norm2(h)))


class UNet(nn.Module):
    """Noise predictor: ``(x_t [B, C, 64, 64], t [B]) -> eps [B, C, 64, 64]``, 2 levels down and up."""

    def __init__(self, channels: int, base: int, groups: int) -> None:
        super().__init__()
        c, tdim = base, 4 * base
        self.tdim = tdim
        self.time = nn.Sequential(nn.Linear(tdim, tdim), nn.SiLU(), nn.Linear(tdim, tdim))
        self.inc = nn.Conv2d(channels, c, 3, padding=1)
        self.down1, self.pool1 = _ResBlock(c, c, tdim, groups), nn.Conv2d(c, c, 3, stride=2, padding=1)
        self.down2, self.pool2 = _ResBlock(c, 2 * c, tdim, groups), nn.Conv2d(2 * c, 2 * c, 3, stride=2, padding=1)
        self.mid = _ResBlock(2 * c, 4 * c, tdim, groups)
        self.up2 = nn.Conv2d(4 * c, 4 * c, 3, padding=1)
        self.dec2 = _ResBlock(4 * c + 2 * c, 2 * c, tdim, groups)
        self.up1 = nn.Conv2d(2 * c, 2 * c, 3, padding=1)
        self.dec1 = _ResBlock(2 * c + c, c, tdim, groups)
        self.out = nn.Sequential(nn.GroupNorm(groups, c), nn.SiLU(), nn.Conv2d(c, channels, 3, padding=1))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.time(timestep_embedding(t, self.tdim))
        s1 = self.down1(self.inc(x), temb)                      # [B, c, 64, 64]
        s2 = self.down2(self.pool1(s1), temb)                   # [B, 2c, 32, 32]
        h = self.mid(self.pool2(s2), temb)                      # [B, 4c, 16, 16]
        h = self.up2(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        h = self.dec2(torch.cat([h, s2], dim=1), temb)          # [B, 2c, 32, 32]
        h = self.up1(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        h = self.dec1(torch.cat([h, s1], dim=1), temb)          # [B, c, 64, 64]
        return self.out(h)


class FrameDiffusion(ConfiguredModel):
    """DDPM over flu frames with a compact U-Net.

    Params
    ------
    steps : int, default 200 (diffusion steps T)
    base_channels : int, default 16 (multiple of ``groups``)
    groups : int, default 8 (GroupNorm groups)
    beta_start, beta_end : float, default 1e-4, 0.02 (scaled by 1000 / steps)
    canvas : [int, int], default [64, 64] (each a multiple of 4, at least the frame size)
    """

    name = "diffusion"
    DEFAULTS: ClassVar[dict[str, Any]] = {"steps": 200, "base_channels": 16, "groups": 8, "beta_start": 1e-4,
                                          "beta_end": 0.02, "canvas": [64, 64]}

    def __init__(self, params: dict[str, Any], info: dict[str, Any]) -> None:
        super().__init__(params, info)
        shape, _ = variable(info, "frames", self.name)
        if len(shape) != 3:
            raise TrainsetError(f"model {self.name!r}: frames are {shape} per sample; expected [F, W, P]. "
                                "Fix: use a flu frames dataset")
        self.frame_shape = tuple(shape)
        self.canvas = tuple(params["canvas"])
        if shape[1] > self.canvas[0] or shape[2] > self.canvas[1]:
            raise TrainsetError(f"model {self.name!r}: frames {shape[1:]} exceed the canvas {list(self.canvas)}. "
                                "Fix: raise model.params.canvas (multiples of 4)")
        self.unet = UNet(shape[0], params["base_channels"], params["groups"])
        scale = 1000.0 / params["steps"]
        betas = torch.linspace(params["beta_start"] * scale, min(params["beta_end"] * scale, 0.999), params["steps"],
                               dtype=torch.float64)
        self.register_buffer("alpha_bar", torch.cumprod(1.0 - betas, dim=0).float(), persistent=False)

    @classmethod
    def from_config(cls, params: dict[str, Any] | None, info: dict[str, Any]) -> "FrameDiffusion":
        """Validate ``params`` against :attr:`DEFAULTS` and build the model for ``info``'s frames."""
        params = resolve_params(cls.name, cls.DEFAULTS, params)
        params["steps"] = check_int(cls.name, "steps", params["steps"], minimum=2)
        params["groups"] = check_int(cls.name, "groups", params["groups"])
        params["base_channels"] = check_int(cls.name, "base_channels", params["base_channels"])
        if params["base_channels"] % params["groups"]:
            raise TrainsetError(f"model {cls.name!r}: base_channels {params['base_channels']} is not a multiple of "
                                f"groups {params['groups']}. Fix: e.g. base_channels: 16, groups: 8")
        params["beta_start"] = check_float(cls.name, "beta_start", params["beta_start"], 1e-8, 1.0)
        params["beta_end"] = check_float(cls.name, "beta_end", params["beta_end"], params["beta_start"], 1.0)
        canvas = params["canvas"]
        if (not isinstance(canvas, (list, tuple)) or len(canvas) != 2
                or any(isinstance(v, bool) or not isinstance(v, int) or v < 4 or v % 4 for v in canvas)):
            raise TrainsetError(f"model {cls.name!r}: canvas must be two multiples of 4, got {canvas!r}. "
                                "Fix: canvas: [64, 64]")
        params["canvas"] = [int(v) for v in canvas]
        return cls(params, info)

    def pad(self, frames: torch.Tensor) -> torch.Tensor:
        """Zero-pad ``[B, F, W, P]`` frames at the end of both grid axes to the canvas."""
        extra_w, extra_p = self.canvas[0] - frames.shape[2], self.canvas[1] - frames.shape[3]
        if extra_w < 0 or extra_p < 0:
            raise TrainsetError(f"model {self.name!r}: frames {list(frames.shape[2:])} exceed the canvas "
                                f"{list(self.canvas)}. Fix: raise model.params.canvas")
        return F.pad(frames.float(), (0, extra_p, 0, extra_w))

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """One DDPM training draw: ``pred`` = predicted noise, ``target`` = the noise (on the canvas)."""
        x0 = self.pad(batch["frames"])
        t = torch.randint(0, self.params["steps"], (x0.shape[0],), device=x0.device)
        noise = torch.randn_like(x0)
        abar = self.alpha_bar[t][:, None, None, None]
        x_t = abar.sqrt() * x0 + (1.0 - abar).sqrt() * noise
        return {"pred": self.unet(x_t, t), "target": noise}

    def checked_steps(self, steps: Any) -> int:
        """Sampling steps: an integer from 2 to the model's diffusion steps. One step would only
        denoise at t = 0, leaving the starting noise in the frames; more than the model has
        cannot be drawn (refused, never cut to the model's count silently)."""
        total = self.params["steps"]
        if isinstance(steps, bool) or not isinstance(steps, int) or not 2 <= steps <= total:
            raise TrainsetError(f"model {self.name!r}: {steps!r} sampling steps; expected an integer from 2 to "
                                f"{total} (the model's diffusion steps, model.params.steps). Fix: set "
                                f"evaluation.sample_steps (trainset evaluate --sample-steps) to 2..{total}")
        return int(steps)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, steps: int | None = None) -> torch.Tensor:
        """Draw ``n`` new frames ``[n, F, W, P]`` by ancestral sampling.

        Parameters
        ----------
        n : int
            Number of frames.
        generator : torch.Generator, optional
            Source of the noise (default torch's global RNG). Noise is drawn on the generator's
            device and moved to the model's, so a CPU generator gives the same noise on any device.
        steps : int, optional
            Fewer denoising steps for speed: an evenly spaced subsequence of the training
            timesteps with the betas re-derived from ``alpha_bar`` (respaced DDPM); default all.
            From 2 to the model's ``steps`` (:meth:`checked_steps`).

        Returns
        -------
        torch.Tensor
            Frames in the loader's scaled units (invert the transform for data units).
        """
        total = self.params["steps"]
        steps = total if steps is None else self.checked_steps(steps)
        timesteps = torch.linspace(0, total - 1, steps).round().long().unique()  # distinct: spacing >= 1
        device = self.alpha_bar.device
        abar = self.alpha_bar[timesteps].double()
        abar_prev = torch.cat([torch.ones(1, dtype=torch.float64, device=device), abar[:-1]])
        betas = (1.0 - abar / abar_prev).clamp(max=0.999)
        was_training = self.training
        self.eval()
        source = generator.device if generator is not None else device
        x = torch.randn((n, self.frame_shape[0], *self.canvas), generator=generator, device=source).to(device)
        for i in range(len(timesteps) - 1, -1, -1):
            t = torch.full((n,), int(timesteps[i]), dtype=torch.long, device=device)
            eps = self.unet(x, t)
            beta, a_t, a_prev = float(betas[i]), float(abar[i]), float(abar_prev[i])
            x = (x - beta / math.sqrt(1.0 - a_t) * eps) / math.sqrt(1.0 - beta)
            if i > 0:
                sigma = math.sqrt(beta * (1.0 - a_prev) / (1.0 - a_t))
                x = x + sigma * torch.randn(x.shape, generator=generator, device=source).to(device)
        self.train(was_training)
        return x[:, :, : self.frame_shape[1], : self.frame_shape[2]]
