"""Macro "worlds": families of economies whose impulse responses come from solved models.

Each world draws a parameter vector ``theta`` and returns the impulse responses (IRFs) of
output, inflation and the interest rate to every structural shock, horizons 0..H. The old
simulators behind the seed project were placeholders (an unsolved "NK" law of motion, IRFs
exactly zero at impact, only shock 0 used); these are the real models:

``nk``      three-equation New Keynesian model solved by QZ (:mod:`.nk`)
``var``     random stable VAR(2) with Cholesky identification (:mod:`.var`)
``var_us``  VAR(2) estimated on US data (statsmodels macrodata), drawn around the estimate
``lss``     random stable state-space systems with oscillatory modes (:mod:`.lss`)

:mod:`.worlds` holds the registry, draws samples into long tables and frames those tables as a
:class:`~trainset.collection.Collection`.
"""

from trainset.domains.macro.worlds import (
    WORLDS,
    extrapolation_splits,
    frame_worlds,
    scale_statistics,
    simulate_worlds,
)

__all__ = ["WORLDS", "extrapolation_splits", "frame_worlds", "scale_statistics", "simulate_worlds"]
