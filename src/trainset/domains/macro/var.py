"""Vector autoregressions: random stable VAR(p) draws, and a VAR estimated on US data.

Both worlds share one model and one ``theta`` layout::

    y_t = A_1 y_{t-1} + ... + A_p y_{t-p} + L e_t,    e_t ~ N(0, I),  y = (output, inflation, rate)

with ``L`` the lower-triangular Cholesky factor of the residual covariance. Identification is
recursive in the order output, inflation, rate: shock j is ``e_j``, so the rate shock moves
only the rate at impact and the output shock moves all three. IRFs are orthogonalised
(Cholesky) responses to a one-standard-deviation structural shock, in the data's units,
computed from the companion form: ``Psi_h = J C^h J' L``.

``theta`` (``3*3*p + 6`` entries; 24 for p = 2) is ``A_1`` row-major (``A1_<equation>_<regressor>``,
the effect of last quarter's regressor on this quarter's equation variable), then ``A_2``, ...,
then the lower triangle of ``L`` row-major (``L_<row>_<column>``, diagonal > 0).

``var``: coefficients uniform on +-0.9/lag, L's diagonal uniform on [0.2, 1], off-diagonal on
+-0.5; draws whose companion matrix has spectral radius >= 0.99 are rejected and counted (about
55% of proposals; the margin keeps near-unit-root random walks out). Random real companion
matrices nearly always have complex eigenvalue pairs, so most IRFs oscillate.

``var_us``: a VAR(p) fitted by OLS (statsmodels) to US quarterly data shipped with statsmodels
(``macrodata``, 1959Q2-2009Q3): output growth ``400 diff(log realgdp)``, ``infl`` and
``tbilrate``, all in annualised percent. p = 2 by default: BIC picks 1 and HQIC 3 (AIC 6) and
BIC at p = 2 is within 0.02 of its minimum, while p = 2 keeps the 24-parameter layout of
``var``. Draws: coefficients ~ N(estimate, scale^2 x OLS asymptotic covariance); the Cholesky
factor from the sampling distribution of the residual covariance, a Wishart centred on the
estimate with ``T - Kp - 1`` degrees of freedom (divided by scale^2), drawn directly in
Cholesky form by the Bartlett decomposition ``L = L_hat M``. The bounds are mean +- 3 sd per
entry and draws outside them are rejected (a truncated prior, ~6% of draws), so the bounds are
a real support and the extrapolation slices of
:func:`~trainset.domains.macro.worlds.extrapolation_splits` are populated; non-stationary draws
(radius >= 1, ~1%) are rejected too, and both are counted.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import numpy as np

from trainset.domains.macro.base import HORIZON, VARIABLES, World, draw_uniform, rejected
from trainset.errors import TrainsetError

logger = logging.getLogger(__name__)

__all__ = ["VarUsWorld", "VarWorld", "companion", "orth_irfs", "spectral_radius", "theta_to_var",
           "us_data", "var_param_names", "var_us_fit", "var_us_point_irfs"]

K = len(VARIABLES)
_TRI = np.tril_indices(K)


def var_param_names(p: int) -> list[str]:
    """Names of ``theta`` for a K = 3 VAR(p): coefficients then Cholesky entries."""
    coefs = [f"A{lag + 1}_{eq}_{reg}" for lag in range(p) for eq in VARIABLES for reg in VARIABLES]
    return coefs + [f"L_{VARIABLES[i]}_{VARIABLES[j]}" for i, j in zip(*_TRI)]


def theta_to_var(theta: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``theta [..., 9p + 6]`` into coefficients ``[..., p, K, K]`` and Cholesky ``[..., K, K]``."""
    theta = np.asarray(theta, dtype=float)
    if theta.ndim == 0 or theta.shape[-1] != p * K * K + len(_TRI[0]):
        raise TrainsetError(f"VAR({p}) theta has shape {theta.shape}, expected (..., {p * K * K + len(_TRI[0])})")
    coefs = theta[..., : p * K * K].reshape(theta.shape[:-1] + (p, K, K))
    chol = np.zeros(theta.shape[:-1] + (K, K))
    chol[..., _TRI[0], _TRI[1]] = theta[..., p * K * K:]
    return coefs, chol


def companion(coefs: np.ndarray) -> np.ndarray:
    """Companion matrix ``[..., Kp, Kp]`` of coefficients ``[..., p, K, K]``."""
    p, k = coefs.shape[-3], coefs.shape[-1]
    out = np.zeros(coefs.shape[:-3] + (k * p, k * p))
    out[..., :k, :] = np.concatenate([coefs[..., lag, :, :] for lag in range(p)], axis=-1)
    out[..., k:, :-k] = np.eye(k * (p - 1))
    return out


def spectral_radius(matrix: np.ndarray) -> np.ndarray:
    """Largest eigenvalue modulus of ``[..., n, n]`` (stability needs < 1)."""
    return np.max(np.abs(np.linalg.eigvals(matrix)), axis=-1)


def orth_irfs(coefs: np.ndarray, chol: np.ndarray, horizon: int = HORIZON) -> np.ndarray:
    """Cholesky-orthogonalised IRFs ``[..., shock, horizon + 1, variable]`` from the companion form.

    ``Psi_h = J C^h J' L``: the first K rows of ``C^h`` applied to the K first companion
    columns, times the Cholesky factor. Same quantity as statsmodels' ``irf(H).orth_irfs``
    (which is ``[horizon, variable, shock]``). Leading axes are batch axes.
    """
    p, k = coefs.shape[-3], coefs.shape[-1]
    comp = companion(coefs)
    block = np.zeros(coefs.shape[:-3] + (k * p, k))
    block[..., :k, :] = chol
    out = np.empty(coefs.shape[:-3] + (horizon + 1, k, k))       # [..., h, variable, shock]
    for h in range(horizon + 1):
        out[..., h, :, :] = block[..., :k, :]
        block = comp @ block
    return np.moveaxis(out, -1, -3).copy()


def _stable_irfs(thetas: np.ndarray, p: int, max_radius: float, horizon: int,
                 status: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mark rows with companion radius >= ``max_radius`` unstable; IRFs of the others."""
    coefs, chol = theta_to_var(thetas, p)
    check = status == ""
    if check.any():
        status[np.flatnonzero(check)[~(spectral_radius(companion(coefs[check])) < max_radius)]] = "unstable"
    ok = status == ""
    irfs = orth_irfs(coefs[ok], chol[ok], horizon) if ok.any() else None
    return rejected((len(thetas), K, horizon + 1, K), status, irfs), status


class VarWorld(World):
    """World ``var``: random stable VAR(p) with Cholesky identification (see module docstring).

    Parameters
    ----------
    name : str
        Registry name.
    p : int
        Lag order (theta has ``9 p + 6`` entries).
    coef_bound : float
        Lag-l coefficients are uniform on ``+-coef_bound / l``.
    max_radius : float
        Draws whose companion spectral radius is >= this are rejected (must be <= 1).
    """

    description = "random stable VAR(p), Cholesky identification (output, inflation, rate), 1-sd shocks"

    def __init__(self, name: str = "var", p: int = 2, coef_bound: float = 0.9, max_radius: float = 0.99) -> None:
        if p < 1 or not 0 < max_radius <= 1:
            raise TrainsetError(f"VAR world {name!r}: need p >= 1 and 0 < max_radius <= 1")
        self.name, self.p, self.max_radius = name, p, max_radius
        self.param_names = var_param_names(p)
        self.shock_names = list(VARIABLES)
        chol_bounds = [[0.2, 1.0] if i == j else [-0.5, 0.5] for i, j in zip(*_TRI)]
        self._bounds = ([[-coef_bound / (lag + 1), coef_bound / (lag + 1)] for lag in range(p) for _ in range(K * K)]
                        + chol_bounds)

    def propose(self, rng: np.random.Generator) -> np.ndarray:
        return draw_uniform(rng, self._bounds)

    def evaluate(self, thetas: np.ndarray, horizon: int = HORIZON) -> tuple[np.ndarray, np.ndarray]:
        thetas = np.atleast_2d(np.asarray(thetas, dtype=float))
        return _stable_irfs(thetas, self.p, self.max_radius, horizon, np.full(len(thetas), "", dtype=object))


def us_data() -> np.ndarray:
    """US quarterly data ``[T, 3]``: 400 dlog real GDP, CPI inflation, 3-month T-bill rate (percent)."""
    from statsmodels.datasets import macrodata

    data = macrodata.load_pandas().data
    growth = 400.0 * np.diff(np.log(data["realgdp"].to_numpy(dtype=float)))
    return np.column_stack([growth, data["infl"].to_numpy(dtype=float)[1:], data["tbilrate"].to_numpy(dtype=float)[1:]])


@functools.lru_cache(maxsize=8)
def var_us_fit(p: int = 2) -> dict[str, Any]:
    """OLS VAR(p) with a constant on :func:`us_data` (cached): estimate and its uncertainty.

    Returns
    -------
    dict
        ``coefs [p, K, K]``, ``chol [K, K]`` (of statsmodels' dof-adjusted ``sigma_u``),
        ``coef_cov`` (covariance of the row-major lag coefficients, i.e. theta's first 9p
        entries), ``df`` (``T - Kp - 1``) and ``nobs``.
    """
    from statsmodels.tsa.api import VAR

    results = VAR(us_data()).fit(p)
    # cov_params is the covariance of vec(B), B = [const, A_1 .. A_p] (K x (1 + Kp)):
    # entry (regressor r, equation i) sits at r * K + i. theta holds A_l[i, j] row-major.
    lag, eq, reg = np.meshgrid(np.arange(p), np.arange(K), np.arange(K), indexing="ij")
    order = ((1 + lag * K + reg) * K + eq).ravel()
    cov = np.asarray(results.cov_params())[np.ix_(order, order)]
    fit = {"coefs": np.asarray(results.coefs), "chol": np.linalg.cholesky(np.asarray(results.sigma_u)),
           "coef_cov": cov, "df": int(results.df_resid), "nobs": int(results.nobs)}
    logger.info("var_us: VAR(%d) on %d quarters, companion radius %.3f", p, fit["nobs"],
                spectral_radius(companion(fit["coefs"])))
    return fit


def var_us_point_irfs(p: int = 2, horizon: int = HORIZON) -> np.ndarray:
    """Cholesky IRFs ``[shock, horizon + 1, variable]`` of the point estimate of :func:`var_us_fit`."""
    fit = var_us_fit(p)
    return orth_irfs(fit["coefs"], fit["chol"], horizon)


def _sqrt_chi2_moments(dof: np.ndarray, scale_df: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sd of ``sqrt(chi2(dof) / scale_df)``."""
    from scipy.special import gammaln  # here: only macro jobs need scipy

    mean = np.exp(0.5 * np.log(2.0) + gammaln((dof + 1) / 2.0) - gammaln(dof / 2.0)) / np.sqrt(scale_df)
    return mean, np.sqrt(np.maximum(dof / scale_df - mean**2, 0.0))


class VarUsWorld(World):
    """World ``var_us``: VAR(p) economies drawn around the US estimate (see module docstring).

    Parameters
    ----------
    name : str
        Registry name.
    p : int
        Lag order of the fitted VAR.
    scale : float
        Multiplies the sampling standard deviations (1 = the estimate's own uncertainty).
    truncation : float
        Bounds are mean +- ``truncation`` sd; draws outside are rejected.
    """

    description = "VAR(p) estimated on US macrodata 1959-2009, drawn around the estimate; Cholesky, 1-sd shocks"

    def __init__(self, name: str = "var_us", p: int = 2, scale: float = 1.0, truncation: float = 3.0) -> None:
        if scale <= 0 or truncation <= 0:
            raise TrainsetError(f"var_us world {name!r}: scale and truncation must be > 0")
        self.name, self.p, self.scale, self.truncation = name, p, scale, truncation
        self.param_names = var_param_names(p)
        self.shock_names = list(VARIABLES)

    @functools.cached_property
    def _sampler(self) -> dict[str, Any]:
        """Means, sds and draw helpers (fits the VAR on first use, not at import)."""
        fit = var_us_fit(self.p)
        df = fit["df"] / self.scale**2
        if df <= K:
            raise TrainsetError(f"var_us world {self.name!r}: scale {self.scale} leaves {df:.1f} degrees of "
                                f"freedom for the covariance draw. Fix: use scale < {np.sqrt(fit['df'] / K):.1f}")
        mean_diag, sd_diag = _sqrt_chi2_moments(df - np.arange(K, dtype=float), df)
        # L = L_hat M, M lower triangular with independent entries: moments of L per entry
        m_mean, m_var = np.diag(mean_diag), np.where(np.tri(K, dtype=bool), 1.0 / df, 0.0)
        np.fill_diagonal(m_var, sd_diag**2)
        chol_mean = fit["chol"] @ m_mean
        chol_sd = np.sqrt(fit["chol"] ** 2 @ m_var)
        mean = np.concatenate([fit["coefs"].ravel(), chol_mean[_TRI]])
        sd = np.concatenate([self.scale * np.sqrt(np.diag(fit["coef_cov"])), chol_sd[_TRI]])
        bounds = np.column_stack([mean - self.truncation * sd, mean + self.truncation * sd])
        return {"fit": fit, "df": df, "coef_factor": self.scale * np.linalg.cholesky(fit["coef_cov"]),
                "mean": mean, "sd": sd, "bounds": bounds}

    @property
    def param_bounds(self) -> list[list[float]]:
        return self._sampler["bounds"].tolist()

    @property
    def param_priors(self) -> dict[str, dict[str, Any]]:
        s = self._sampler
        priors = {}
        for k, name in enumerate(self.param_names):
            dist = "normal" if k < self.p * K * K else "wishart_cholesky"
            priors[name] = {"dist": dist, "mean": float(s["mean"][k]), "sd": float(s["sd"][k]),
                            "low": float(s["bounds"][k, 0]), "high": float(s["bounds"][k, 1])}
        return priors

    def propose(self, rng: np.random.Generator) -> np.ndarray:
        s = self._sampler
        fit = s["fit"]
        coefs = fit["coefs"].ravel() + s["coef_factor"] @ rng.standard_normal(self.p * K * K)
        # Bartlett: (L_hat M)(L_hat M)' ~ Wishart(df, Sigma_hat / df) for this lower-triangular M
        M = np.zeros((K, K))
        M[np.tril_indices(K, -1)] = rng.standard_normal(K * (K - 1) // 2)
        M[np.diag_indices(K)] = np.sqrt(rng.chisquare(s["df"] - np.arange(K)))
        chol = fit["chol"] @ (M / np.sqrt(s["df"]))
        return np.concatenate([coefs, chol[_TRI]])

    def evaluate(self, thetas: np.ndarray, horizon: int = HORIZON) -> tuple[np.ndarray, np.ndarray]:
        thetas = np.atleast_2d(np.asarray(thetas, dtype=float))
        bounds = self._sampler["bounds"]
        outside = np.any((thetas < bounds[:, 0]) | (thetas > bounds[:, 1]), axis=-1)
        status = np.where(outside, "outside_bounds", "").astype(object)
        return _stable_irfs(thetas, self.p, 1.0, horizon, status)
