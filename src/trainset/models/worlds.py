"""Per-world MLPs for the macro emulator (seed 003): ``theta [P_w] -> irfs [S_w, H+1, V]``.

Worlds differ in parameter and shock counts, so each has its own MLP (a ``ModuleDict`` keyed by
world name). A mixed-world batch from :func:`trainset.loaders.worlds.collate_mixed_worlds`
(``theta`` and ``irfs`` zero-padded, ``theta_mask``, ``shock_mask``, ``part``) is split by world
with index tensors, each group goes through its world's MLP on its own ``P_w`` parameters, and
the outputs are placed back into a zero ``[B, max_S, H+1, V]`` prediction. The returned
``mask`` is ``shock_mask`` ``[B, S]`` (losses align it with the leading dims), so padded shocks never count in
the loss while *every* real shock does (the old code trained shock 0 only).

The world list (``self.worlds``) and each world's shapes travel with the weights: they are the
module's extra state in ``state_dict()``, and loading a state dict of another world list is an
error, so evaluation cannot silently score one world's emulator on another's data (the old
checkpoints did not record the worlds).
"""

from __future__ import annotations

import logging
import math
from typing import Any, ClassVar

import torch
from torch import nn

from trainset.errors import TrainsetError
from trainset.models.mlp import (ACTIVATIONS, ConfiguredModel, check_choice, check_float, check_hidden, make_mlp,
                                 resolve_params)

logger = logging.getLogger(__name__)

__all__ = ["WorldMLP"]


def _world_shapes(info: dict[str, Any], model: str) -> dict[str, tuple[int, tuple[int, int, int]]]:
    """World -> (P, (S, H+1, V)) from ``info["worlds"]``, checked."""
    worlds = info.get("worlds")
    if not isinstance(worlds, dict) or not worlds:
        raise TrainsetError(f"model {model!r}: info has no 'worlds' (name -> {{theta: [P], irfs: [S, H+1, V]}}). "
                            "Fix: use world_mlp on a macro (irf) dataset with one part per world")
    out = {}
    for name, spec in worlds.items():
        theta, irfs = list(spec.get("theta", [])), list(spec.get("irfs", []))
        if len(theta) != 1 or len(irfs) != 3 or min(theta + irfs) < 1:
            raise TrainsetError(f"model {model!r}: world {name!r} has theta {theta} and irfs {irfs}; expected "
                                "[P] and [S, H+1, V]. Fix: describe the dataset with trainset.models.describe_dataset")
        out[str(name)] = (int(theta[0]), (int(irfs[0]), int(irfs[1]), int(irfs[2])))
    trailing = {shape[1:] for _, shape in out.values()}
    if len(trailing) != 1:
        raise TrainsetError(f"model {model!r}: worlds differ in horizons x variables {sorted(trailing)}. "
                            "Fix: simulate every world with the same H and variables")
    return out


class WorldMLP(ConfiguredModel):
    """One MLP per world, trained together on mixed-world, padded batches.

    Params
    ------
    hidden : list of int, default [128, 128]
    activation : str, default "silu" (smooth, as IRFs are smooth in theta)
    dropout : float, default 0.0
    """

    name = "world_mlp"
    DEFAULTS: ClassVar[dict[str, Any]] = {"hidden": [128, 128], "activation": "silu", "dropout": 0.0}

    def __init__(self, params: dict[str, Any], info: dict[str, Any]) -> None:
        super().__init__(params, info)
        self.shapes = _world_shapes(info, self.name)
        self.worlds: list[str] = list(self.shapes)
        self.nets = nn.ModuleDict({
            world: make_mlp(p, params["hidden"], math.prod(irfs), params["activation"], params["dropout"])
            for world, (p, irfs) in self.shapes.items()})

    @classmethod
    def from_config(cls, params: dict[str, Any] | None, info: dict[str, Any]) -> "WorldMLP":
        """Validate ``params`` against :attr:`DEFAULTS` and build one MLP per world of ``info``."""
        params = resolve_params(cls.name, cls.DEFAULTS, params)
        params["hidden"] = check_hidden(cls.name, "hidden", params["hidden"])
        check_choice(cls.name, "activation", params["activation"], tuple(ACTIVATIONS))
        params["dropout"] = check_float(cls.name, "dropout", params["dropout"], 0.0, 1.0)
        return cls(params, info)

    # -------------------------------------------------------------- the world list travels with the weights

    def get_extra_state(self) -> dict[str, Any]:
        """World names (in order) and shapes, stored in ``state_dict()``."""
        return {"worlds": list(self.worlds),
                "shapes": {w: {"theta": [p], "irfs": list(s)} for w, (p, s) in self.shapes.items()}}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Refuse a state dict saved for other worlds (or other world shapes)."""
        self.check_worlds(state.get("worlds", []))
        saved = {w: (int(s["theta"][0]), tuple(int(x) for x in s["irfs"])) for w, s in state.get("shapes", {}).items()}
        if saved and saved != self.shapes:
            raise TrainsetError(f"model {self.name!r}: checkpoint world shapes {saved} differ from the model's "
                                f"{self.shapes}. Fix: rebuild the model from the checkpoint's own info")

    def check_worlds(self, worlds: list[str]) -> None:
        """Raise unless ``worlds`` is exactly this model's world list, in order.

        Raises
        ------
        TrainsetError
            Naming both lists, so evaluation never scores a model on other worlds.
        """
        if list(worlds) != self.worlds:
            raise TrainsetError(f"model {self.name!r}: trained on worlds {self.worlds}, but given {list(worlds)}. "
                                "Fix: evaluate on the dataset the model was trained on, or retrain")

    # -------------------------------------------------------------- forward

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Predict every shock of every sample with its own world's MLP.

        Parameters
        ----------
        batch : dict
            ``theta`` ``[B, P_max]``, ``irfs`` ``[B, S_max, H+1, V]``, ``shock_mask`` ``[B, S_max]``
            and ``part`` (list of B world names), as :func:`collate_mixed_worlds` makes them;
            without ``part`` (a one-world store's batches) every row is the model's only world.

        Returns
        -------
        dict
            ``pred`` and ``target`` ``[B, S_max, H+1, V]``; ``mask`` (bool ``[B, S_max]``) is True on
            the real shocks only.

        Raises
        ------
        TrainsetError
            A world the model does not know, or a sample whose shapes differ from its world's.
        """
        theta, target, worlds = batch["theta"], batch["irfs"], batch.get("part")
        if worlds is None:  # a one-world store's batches name no part: they can only be its world
            if len(self.worlds) != 1:
                raise TrainsetError(f"model {self.name!r}: batch names no 'part' but the model has worlds "
                                    f"{self.worlds}. Fix: collate with collate_mixed_worlds, which keeps 'part'")
            worlds = self.worlds[0]
        if isinstance(worlds, str):
            worlds = [worlds] * theta.shape[0]
        shock_mask = batch.get("shock_mask")
        if shock_mask is None:
            shock_mask = torch.ones(target.shape[:2], dtype=torch.bool, device=target.device)
        groups: dict[str, list[int]] = {}
        for row, world in enumerate(worlds):
            groups.setdefault(world, []).append(row)
        unknown = sorted(set(groups) - set(self.shapes))
        if unknown:
            raise TrainsetError(f"model {self.name!r}: batch has world(s) {unknown} the model was not built for "
                                f"(it knows {self.worlds}). Fix: train and evaluate on the same worlds")
        pred = torch.zeros(target.shape, dtype=torch.float32, device=target.device)
        for world, rows in groups.items():
            n_params, shape = self.shapes[world]
            if theta.shape[1] < n_params or target.shape[1] < shape[0] or tuple(target.shape[2:]) != shape[1:]:
                raise TrainsetError(f"model {self.name!r}: world {world!r} expects theta [{n_params}] and irfs "
                                    f"{list(shape)}, batch has theta {list(theta.shape[1:])} and irfs "
                                    f"{list(target.shape[1:])}. Fix: use the dataset the model was built for")
            index = torch.as_tensor(rows, dtype=torch.long, device=theta.device)
            real = shock_mask[index].sum(dim=1)
            if bool((real != shape[0]).any()):
                raise TrainsetError(f"model {self.name!r}: world {world!r} samples have {sorted(set(real.tolist()))} "
                                    f"shocks, the model {shape[0]}. Fix: use the dataset the model was built for")
            out = self.nets[world](theta[index, :n_params].float())
            pred[index, : shape[0]] = out.reshape(len(rows), *shape)
        # [B, S]: losses align masks with the leading dims, so padded shocks never count
        return {"pred": pred, "target": target, "mask": shock_mask.bool()}
