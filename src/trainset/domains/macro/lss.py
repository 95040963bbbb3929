"""Random stable linear state-space systems with oscillatory modes.

Model::

    x_{t+1} = A x_t + B e_t,      y_t = C x_t + D e_t,      e_t ~ N(0, I_k),  y = (output, inflation, rate)

so the response of ``y`` to a one-standard-deviation shock ``e_j`` is ``D[:, j]`` at impact
(h = 0) and ``C A^{h-1} B[:, j]`` at h >= 1: impact responses are non-zero through ``D``, and
the dynamics ring at the frequencies of ``A``'s complex eigenvalues.

``A`` is drawn in real modal form: ``n_modes`` 2 x 2 blocks ``r [[cos w, -sin w], [sin w, cos w]]``
with eigenvalues ``r exp(+-i w)``, radius ``r`` < 1 (stable) and frequency ``w`` > 0 (a period
of ``2 pi / w`` quarters). Any diagonalisable ``A`` with such eigenvalues is similar to this
form and the similarity is absorbed by ``B`` and ``C``, so the form loses no generality for the
IRFs while keeping ``theta`` short and interpretable.

``theta`` (``2 m + 2 m k + 3 * 2 m + 3 k`` entries; 37 for m = 2 modes, k = 3 shocks):
``r1, w1, r2, w2, ...``, then ``B`` row-major (``B_x<state>_<shock>``), ``C`` row-major
(``C_<variable>_x<state>``), ``D`` row-major (``D_<variable>_<shock>``), all uniform on their
bounds. Every proposal is stable by construction, so none is rejected; :meth:`LssWorld.evaluate`
rejects user rows with a radius >= 1.
"""

from __future__ import annotations

import logging

import numpy as np

from trainset.domains.macro.base import HORIZON, VARIABLES, World, draw_uniform
from trainset.errors import TrainsetError

logger = logging.getLogger(__name__)

__all__ = ["LssWorld", "lss_irfs", "lss_matrices", "lss_param_names", "modal_matrix"]

N_OBS = len(VARIABLES)
RADIUS_BOUNDS = (0.5, 0.97)
FREQUENCY_BOUNDS = (0.1, 1.5)      # periods of about 4 to 63 quarters
LOADING_BOUNDS = (-1.0, 1.0)       # B and C
IMPACT_BOUNDS = (-0.5, 0.5)        # D


def lss_param_names(n_modes: int, n_shocks: int) -> list[str]:
    """Names of ``theta``: mode radii and frequencies, then B, C and D row-major."""
    n = 2 * n_modes
    shocks = [f"shock{j + 1}" for j in range(n_shocks)]
    modes = [name for m in range(n_modes) for name in (f"r{m + 1}", f"w{m + 1}")]
    return (modes + [f"B_x{i + 1}_{s}" for i in range(n) for s in shocks]
            + [f"C_{v}_x{i + 1}" for v in VARIABLES for i in range(n)]
            + [f"D_{v}_{s}" for v in VARIABLES for s in shocks])


def modal_matrix(radii: np.ndarray, frequencies: np.ndarray) -> np.ndarray:
    """Block-diagonal ``A [..., 2m, 2m]`` with one rotation-contraction block per (radius, frequency)."""
    radii, frequencies = np.asarray(radii, float), np.asarray(frequencies, float)
    n = 2 * radii.shape[-1]
    A = np.zeros(radii.shape[:-1] + (n, n))
    c, s = radii * np.cos(frequencies), radii * np.sin(frequencies)
    rows = np.arange(0, n, 2)
    A[..., rows, rows], A[..., rows, rows + 1], A[..., rows + 1, rows], A[..., rows + 1, rows + 1] = c, -s, s, c
    return A


def lss_matrices(theta: np.ndarray, n_modes: int, n_shocks: int) -> tuple[np.ndarray, ...]:
    """``(A, B, C, D)`` from ``theta [..., n_params]`` laid out as in :func:`lss_param_names`."""
    theta = np.asarray(theta, dtype=float)
    n = 2 * n_modes
    expected = len(lss_param_names(n_modes, n_shocks))
    if theta.ndim == 0 or theta.shape[-1] != expected:
        raise TrainsetError(f"LSS theta has shape {theta.shape}, expected (..., {expected}) for "
                            f"{n_modes} modes and {n_shocks} shocks")
    sizes = np.cumsum([2 * n_modes, n * n_shocks, N_OBS * n])
    modes, B, C, D = np.split(theta, sizes, axis=-1)
    lead = theta.shape[:-1]
    A = modal_matrix(modes[..., 0::2], modes[..., 1::2])
    return A, B.reshape(lead + (n, n_shocks)), C.reshape(lead + (N_OBS, n)), D.reshape(lead + (N_OBS, n_shocks))


def lss_irfs(A: np.ndarray, B: np.ndarray, C: np.ndarray, D: np.ndarray,
             horizon: int = HORIZON) -> np.ndarray:
    """IRFs ``[..., shock, horizon + 1, variable]``: ``D`` at h = 0, ``C A^{h-1} B`` after."""
    out = np.empty(D.shape[:-2] + (horizon + 1,) + D.shape[-2:])     # [..., h, variable, shock]
    out[..., 0, :, :] = D
    state = B
    for h in range(1, horizon + 1):
        out[..., h, :, :] = C @ state
        state = A @ state
    return np.moveaxis(out, -1, -3).copy()


class LssWorld(World):
    """World ``lss``: oscillatory stable state-space systems (see module docstring).

    Parameters
    ----------
    name : str
        Registry name.
    n_modes : int
        Number of complex-conjugate eigenvalue pairs (state dimension ``2 n_modes``).
    n_shocks : int
        Number of shocks ``k`` (the IRF's first axis).
    """

    description = "random stable state-space systems with oscillatory modes; 1-sd shocks"

    def __init__(self, name: str = "lss", n_modes: int = 2, n_shocks: int = 3) -> None:
        if n_modes < 1 or n_shocks < 1:
            raise TrainsetError(f"LSS world {name!r}: need n_modes >= 1 and n_shocks >= 1")
        self.name, self.n_modes, self.n_shocks = name, n_modes, n_shocks
        self.param_names = lss_param_names(n_modes, n_shocks)
        self.shock_names = [f"shock{j + 1}" for j in range(n_shocks)]
        n = 2 * n_modes
        self._bounds = ([list(b) for _ in range(n_modes) for b in (RADIUS_BOUNDS, FREQUENCY_BOUNDS)]
                        + [list(LOADING_BOUNDS)] * (n * n_shocks + N_OBS * n)
                        + [list(IMPACT_BOUNDS)] * (N_OBS * n_shocks))

    def propose(self, rng: np.random.Generator) -> np.ndarray:
        return draw_uniform(rng, self._bounds)

    def evaluate(self, thetas: np.ndarray, horizon: int = HORIZON) -> tuple[np.ndarray, np.ndarray]:
        thetas = np.atleast_2d(np.asarray(thetas, dtype=float))
        irfs = lss_irfs(*lss_matrices(thetas, self.n_modes, self.n_shocks), horizon)
        bad = ~np.isfinite(irfs).all(axis=(1, 2, 3)) | np.any(np.abs(thetas[:, 0:2 * self.n_modes:2]) >= 1.0, axis=-1)
        status = np.where(bad, "unstable", "").astype(object)
        irfs[bad] = np.nan
        return irfs, status
