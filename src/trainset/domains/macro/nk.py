"""The three-equation New Keynesian model, solved properly (QZ / Blanchard-Kahn).

The old "NK" simulator iterated a law of motion that was never solved from the model, and its
IRFs were exactly zero at impact. Here the rational-expectations solution is computed by the
generalized Schur (QZ) method of Klein (2000), determinacy is checked by counting unstable
roots, and the solution is verified by plugging it back into the equations.

Model (all variables in percent deviations from steady state, quarterly rates)::

    x_t  = E_t x_{t+1} - (1/sigma) (i_t - E_t pi_{t+1} - r^n) + d_t       (IS curve)
    pi_t = beta E_t pi_{t+1} + kappa x_t + s_t                              (Phillips curve)
    i_t  = rho_i i_{t-1} + (1 - rho_i)(phi_pi pi_t + phi_x x_t) + m_t       (Taylor rule)
    d_t = rho_d d_{t-1} + sd_d e^d_t,  s_t = rho_s s_{t-1} + sd_s e^s_t,  m_t = rho_m m_{t-1} + sd_m e^m_t

with ``r^n`` constant (zero in deviations: the demand shock ``d`` is the IS disturbance) and
``e`` iid N(0, 1); ``rho_m = 0`` gives an iid monetary shock. Interest-rate smoothing makes
``i_{t-1}`` a state, so the predetermined vector is ``k_t = (i_{t-1}, d_t, s_t, m_t)`` and the
jumps are ``(x_t, pi_t)``. The solution is ``(x_t, pi_t) = F k_t`` and ``k_{t+1} = P k_t +``
innovations, and ``i_t`` is the first row of ``P k_t``.

Shock size convention: the IRF to a shock is the response to a ONE-STANDARD-DEVIATION
innovation (``e = 1`` at h = 0, so the shock itself starts at ``sd``), in the model's own
units: percent deviations, quarterly (not annualised) inflation and interest rate. IRFs are the
deterministic paths after the innovation, so expectations equal next period's IRF value; every
shock moves all three variables at impact (h = 0) unless a parameter switches the channel off.

``theta`` is the 12 parameters in :data:`PARAM_NAMES` order, drawn uniformly on their bounds.
``phi_pi`` starts below 1, so some draws violate the Taylor principle: those that are not
determinate (number of unstable roots != 2 forward-looking variables) are rejected and counted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from trainset.domains.macro.base import HORIZON, World, draw_uniform, rejected
from trainset.errors import TrainsetError

logger = logging.getLogger(__name__)

__all__ = ["NK_BOUNDS", "PARAM_NAMES", "SHOCK_NAMES", "NkSolution", "NkWorld", "irfs_from_solution",
           "nk_irfs", "nk_system", "solve_nk", "solve_nk_batch"]

NK_BOUNDS: dict[str, tuple[float, float]] = {
    "beta": (0.985, 0.995),   # discount factor (quarterly)
    "sigma": (0.5, 3.0),      # inverse intertemporal elasticity
    "kappa": (0.01, 0.3),     # slope of the Phillips curve
    "phi_pi": (0.8, 3.0),     # Taylor-rule response to inflation (below 1: maybe indeterminate)
    "phi_x": (0.0, 0.5),      # Taylor-rule response to the output gap
    "rho_i": (0.0, 0.9),      # interest-rate smoothing
    "rho_d": (0.0, 0.95),     # persistence of the demand shock
    "rho_s": (0.0, 0.95),     # persistence of the cost-push shock
    "rho_m": (0.0, 0.8),      # persistence of the monetary shock (0 = iid)
    "sd_d": (0.1, 1.0),       # innovation standard deviations (percent)
    "sd_s": (0.05, 0.5),
    "sd_m": (0.05, 0.5),
}
PARAM_NAMES: list[str] = list(NK_BOUNDS)
SHOCK_NAMES: list[str] = ["demand", "cost_push", "monetary"]
N_STATES, N_JUMPS = 4, 2
_TOL = 1e-8


@dataclass(frozen=True)
class NkSolution:
    """The solved law of motion, or why there is none.

    Attributes
    ----------
    status : str
        ``"determinate"``, ``"indeterminate"`` (too few unstable roots), ``"explosive"`` (too
        many: no stable solution), ``"singular"`` (no invertible Z11) or ``"inaccurate"``.
    n_unstable : int
        Generalized eigenvalues outside the unit circle (2 means determinate).
    P : ndarray (4, 4) or None
        ``k_{t+1} = P k_t`` (plus innovations); row 0 gives ``i_t``.
    F : ndarray (2, 4) or None
        ``(x_t, pi_t) = F k_t``.
    residual : float
        Max abs residual of the solved equations (NaN when there is no solution).
    """

    status: str
    n_unstable: int
    P: np.ndarray | None = None
    F: np.ndarray | None = None
    residual: float = float("nan")

    @property
    def determinate(self) -> bool:
        return self.status == "determinate"


def _as_theta(theta: np.ndarray | dict[str, float]) -> np.ndarray:
    """Parameter array ``[..., 12]`` in :data:`PARAM_NAMES` order (a dict is accepted too)."""
    if isinstance(theta, dict):
        missing = [name for name in PARAM_NAMES if name not in theta]
        if missing:
            raise TrainsetError(f"NK parameters missing {missing}. Fix: give all of {PARAM_NAMES}")
        theta = np.array([theta[name] for name in PARAM_NAMES], dtype=float)
    theta = np.asarray(theta, dtype=float)
    if theta.ndim == 0 or theta.shape[-1] != len(PARAM_NAMES):
        raise TrainsetError(f"NK theta has shape {theta.shape}, expected (..., {len(PARAM_NAMES)}) in "
                            f"the order {PARAM_NAMES}")
    return theta


def nk_system(theta: np.ndarray | dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Matrices ``(A, B)`` ``[..., 6, 6]`` of ``A E_t z_{t+1} = B z_t``, ``z = (i_{t-1}, d, s, m, x, pi)``.

    Row 0 is the Taylor rule written for next period's state ``i_t``, rows 1-3 the shock
    processes, row 4 the IS curve (``i_t`` appears as ``E_t z_{t+1}[0]``, known at t) and row 5
    the Phillips curve. Leading axes of ``theta`` are batch axes.
    """
    t = _as_theta(theta)
    beta, sigma, kappa, phi_pi, phi_x, rho_i, rho_d, rho_s, rho_m = np.moveaxis(t[..., :9], -1, 0)
    A, B = np.zeros(t.shape[:-1] + (6, 6)), np.zeros(t.shape[:-1] + (6, 6))
    # i_t = rho_i i_{t-1} + (1 - rho_i)(phi_pi pi_t + phi_x x_t) + m_t
    A[..., 0, 0] = 1.0
    B[..., 0, 0], B[..., 0, 3] = rho_i, 1.0
    B[..., 0, 4], B[..., 0, 5] = (1 - rho_i) * phi_x, (1 - rho_i) * phi_pi
    # E u_{t+1} = rho u_t for u = d, s, m
    A[..., 1:4, 1:4] = np.eye(3)
    B[..., 1, 1], B[..., 2, 2], B[..., 3, 3] = rho_d, rho_s, rho_m
    # E x_{t+1} + E pi_{t+1} / sigma - i_t / sigma = x_t - d_t
    A[..., 4, 0], A[..., 4, 4], A[..., 4, 5] = -1.0 / sigma, 1.0, 1.0 / sigma
    B[..., 4, 1], B[..., 4, 4] = -1.0, 1.0
    # beta E pi_{t+1} = pi_t - kappa x_t - s_t
    A[..., 5, 5] = beta
    B[..., 5, 2], B[..., 5, 4], B[..., 5, 5] = -1.0, -kappa, 1.0
    return A, B


def solve_nk_batch(thetas: np.ndarray) -> dict[str, np.ndarray]:
    """Solve the model for parameter rows ``[n, 12]`` by ordered QZ; check determinacy and accuracy.

    The pencil ``B z = lambda A z`` is reordered so stable roots come first. A row is
    determinate when exactly 4 roots (the predetermined variables) are stable, i.e. the number
    of unstable roots equals the 2 forward-looking variables (Blanchard-Kahn). Then
    ``F = Z21 Z11^-1`` and ``P = Z11 S11^-1 T11 Z11^-1`` (Klein 2000), accepted only if the
    solution satisfies ``A [I; F] P = B [I; F]`` to 1e-8.

    Returns
    -------
    dict
        ``status`` [n] (``""`` when determinate, else ``indeterminate``, ``explosive``,
        ``singular`` or ``inaccurate``), ``n_unstable`` [n], ``P`` [n, 4, 4], ``F`` [n, 2, 4]
        and ``residual`` [n] (NaN where there is no solution).
    """
    from scipy.linalg import ordqz  # here: every domain job imports this module, only macro ones solve

    A, B = nk_system(np.atleast_2d(thetas))
    n = A.shape[0]
    # ordqz(B, A): B = Q T Z^H, A = Q S Z^H; eigenvalues alpha/beta of B z = lambda A z
    T, S, alpha, beta, _, Z = ordqz(B, A, sort="iuc", output="complex")
    n_stable = np.sum(np.abs(alpha) < np.abs(beta), axis=-1)
    status = np.where(n_stable > N_STATES, "indeterminate", np.where(n_stable < N_STATES, "explosive", ""))
    out = {"status": status.astype(object), "n_unstable": 6 - n_stable, "P": np.full((n, N_STATES, N_STATES), np.nan),
           "F": np.full((n, N_JUMPS, N_STATES), np.nan), "residual": np.full(n, np.nan)}
    ok = status == ""
    Z11 = Z[:, :N_STATES, :N_STATES]
    with np.errstate(all="ignore"):
        cond = np.where(ok, np.linalg.cond(Z11), np.inf)
    out["status"][ok & ~(cond < 1e10)] = "singular"
    ok &= cond < 1e10
    if not ok.any():
        return out
    Z11, Z21 = Z11[ok], Z[ok, N_STATES:, :N_STATES]
    Z11_inv = np.linalg.inv(Z11)
    F = (Z21 @ Z11_inv).real
    P = (Z11 @ np.linalg.solve(S[ok, :N_STATES, :N_STATES], T[ok, :N_STATES, :N_STATES]) @ Z11_inv).real
    stacked = np.concatenate([np.broadcast_to(np.eye(N_STATES), P.shape), F], axis=-2)
    residual = np.max(np.abs(A[ok] @ stacked @ P - B[ok] @ stacked), axis=(-2, -1))
    out["P"][ok], out["F"][ok], out["residual"][ok] = P, F, residual
    out["status"][np.flatnonzero(ok)[~(residual < _TOL)]] = "inaccurate"
    return out


def solve_nk(theta: np.ndarray | dict[str, float]) -> NkSolution:
    """Solve the model for one parameter vector (see :func:`solve_nk_batch`)."""
    t = _as_theta(theta)
    if t.ndim != 1:
        raise TrainsetError(f"solve_nk takes one parameter vector, got shape {t.shape}. Fix: use solve_nk_batch")
    out = solve_nk_batch(t[None])
    status = out["status"][0] or "determinate"
    has = status in ("determinate", "inaccurate")
    return NkSolution(status, int(out["n_unstable"][0]), out["P"][0] if has else None,
                      out["F"][0] if has else None, float(out["residual"][0]))


def irfs_from_solution(P: np.ndarray, F: np.ndarray, sd: np.ndarray, horizon: int = HORIZON) -> np.ndarray:
    """IRFs ``[..., 3 shocks, horizon + 1, 3 variables]`` to one-standard-deviation innovations.

    Starting from ``k_0 = (0, sd_j e_j)`` the state follows ``k_{h+1} = P k_h``; output and
    inflation are ``F k_h`` and the rate is ``P[0] k_h``. The three shocks are propagated at
    once as the columns of a 4 x 3 state matrix, and leading axes are batch axes.
    """
    k = np.zeros(P.shape[:-2] + (N_STATES, 3))
    k[..., np.arange(1, 4), np.arange(3)] = sd
    observe = np.concatenate([F, P[..., :1, :]], axis=-2)
    out = np.empty(P.shape[:-2] + (horizon + 1, 3, 3))          # [..., h, variable, shock]
    for h in range(horizon + 1):
        out[..., h, :, :] = observe @ k
        k = P @ k
    return np.moveaxis(out, -1, -3).copy()


def nk_irfs(theta: np.ndarray | dict[str, float], horizon: int = HORIZON) -> np.ndarray:
    """IRFs ``[3, horizon + 1, 3]`` of one parameter vector; an error if it is not determinate."""
    t = _as_theta(theta)
    solution = solve_nk(t)
    if not solution.determinate:
        raise TrainsetError(f"NK model is {solution.status} ({solution.n_unstable} unstable roots, 2 needed): "
                            f"no unique stable solution. Fix: raise phi_pi above 1 (Taylor principle)")
    return irfs_from_solution(solution.P, solution.F, t[9:], horizon)


class NkWorld(World):
    """World ``nk``: 12 NK parameters drawn uniformly on their bounds; indeterminate draws rejected.

    Parameters
    ----------
    name : str
        Registry name (seeds derive from it).
    bounds : dict, optional
        Overrides of :data:`NK_BOUNDS` entries, e.g. ``{"phi_pi": (1.0, 3.0)}``.
    """

    description = "three-equation New Keynesian model, QZ solution, 1-sd shocks, percent deviations"

    def __init__(self, name: str = "nk", bounds: dict[str, tuple[float, float]] | None = None) -> None:
        unknown = set(bounds or {}) - set(NK_BOUNDS)
        if unknown:
            raise TrainsetError(f"NK bounds for unknown parameters {sorted(unknown)}. Fix: use {PARAM_NAMES}")
        merged = {**NK_BOUNDS, **(bounds or {})}
        self.name = name
        self.param_names = list(PARAM_NAMES)
        self.shock_names = list(SHOCK_NAMES)
        self._bounds = [[float(lo), float(hi)] for lo, hi in merged.values()]

    def propose(self, rng: np.random.Generator) -> np.ndarray:
        return draw_uniform(rng, self._bounds)

    def evaluate(self, thetas: np.ndarray, horizon: int = HORIZON) -> tuple[np.ndarray, np.ndarray]:
        thetas = _as_theta(thetas).reshape(-1, len(PARAM_NAMES))
        solved = solve_nk_batch(thetas)
        status = solved["status"]
        ok = status == ""
        irfs = irfs_from_solution(solved["P"][ok], solved["F"][ok], thetas[ok, 9:], horizon) if ok.any() else None
        return rejected((len(thetas), 3, horizon + 1, 3), status, irfs), status
