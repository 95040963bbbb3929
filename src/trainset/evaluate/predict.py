"""Load a trained run honestly and collect its predictions on one split.

Honesty rules: a checkpoint that cannot be loaded, a dataset whose hash differs from the one
the model was trained on, a scaler file whose hash differs, or a world list that does not match
the dataset fails with a clear message. Scores are only ever computed on the model's own
predictions, never on a stand-in (the old evaluation scored the truth as prediction when the
model failed to load).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from trainset.errors import TrainsetError
from trainset.provenance import file_sha256

logger = logging.getLogger(__name__)


@dataclass
class Predictions:
    """Model outputs and targets of one split, in data units where the target was scaled."""

    pred: np.ndarray
    target: np.ndarray
    mask: np.ndarray | None
    extra: dict[str, Any] = field(default_factory=dict)  # index, site, part, inputs


def load_trained(cfg: Any, checkpoint: str | os.PathLike, dataset_path: str | os.PathLike,
                 scalers_path: str | os.PathLike | None) -> tuple[torch.nn.Module, dict, Any]:
    """The model of a checkpoint, after checking it belongs to this dataset and these scalers,
    on the run's ``training.device`` here (a checkpoint trained on a GPU loads on the CPU:
    its tensors are mapped to the evaluating device)."""
    from trainset.train.run import load_scalers, run_device
    from trainset.train.trainer import checkpoint_meta, load_checkpoint

    device = run_device(cfg)
    state = load_checkpoint(checkpoint, map_location=device)
    meta = checkpoint_meta(state)
    digest = file_sha256(dataset_path)
    if meta.get("dataset_sha256") != digest:
        raise TrainsetError(f"{checkpoint}: trained on dataset {meta.get('dataset_sha256', '?')[:12]}, but "
                            f"{dataset_path} is {digest[:12]}. Fix: retrain the run on this dataset")
    scalers = load_scalers(scalers_path)
    scaler_hash = scalers.hash if scalers is not None else None
    if meta.get("scaler_sha256") != scaler_hash:
        raise TrainsetError(f"{checkpoint}: trained with scalers {meta.get('scaler_sha256')}, but {scalers_path} "
                            f"has {scaler_hash}. Fix: retrain, or evaluate with the scalers it was trained with")
    info = meta.get("info") or {}
    stored_worlds = sorted(info.get("worlds") or [])
    if meta.get("worlds") and sorted(meta["worlds"]) != stored_worlds:
        raise TrainsetError(f"{checkpoint}: model worlds {meta['worlds']} differ from the dataset's {stored_worlds}. "
                            "Fix: evaluate on the dataset the model was trained on")
    model, _ = restore_model(cfg, state, meta, checkpoint, device)
    logger.info("%s: trained on %s%s, evaluated on %s", checkpoint, meta.get("device", "?"),
                f" ({meta['gpu_name']})" if meta.get("gpu_name") else "", device)
    return model, meta, scalers


def restore_model(cfg: Any, state: dict[str, Any], meta: dict[str, Any], checkpoint: Any,
                  device: Any) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The checkpoint's model on ``device`` in eval mode, built from its recorded ``info`` (worlds in
    the checkpoint's order: stored JSON sorts dict keys), and that info."""
    from trainset.models import build_model

    info = meta.get("info") or {}
    if meta.get("worlds"):
        info = {**info, "worlds": {w: info["worlds"][w] for w in meta["worlds"]}}
    torch.manual_seed(0)
    model = build_model(cfg.model.name, dict(cfg.model.params), info)
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError, ValueError) as error:
        raise TrainsetError(f"{checkpoint}: weights do not fit model {cfg.model.name!r} ({error}). "
                            "Fix: retrain, or use the config and run folder the checkpoint was trained with") from error
    return model.to(device).eval(), info


@torch.no_grad()
def predict(model: torch.nn.Module, cfg: Any, dataset_path: str | os.PathLike, split: str, scalers: Any,
            info: dict) -> Predictions:
    """Run the model over one split (stored order) and gather pred/target in data units."""
    from trainset.train.run import prepare_run

    import dataclasses

    # one process: worker processes would interleave WebDataset shards out of stored order
    cfg = dataclasses.replace(cfg, training=dataclasses.replace(cfg.training, num_workers=0))
    from trainset.train.device import model_device

    run = prepare_run(cfg, dataset_path, scalers, splits={split: False}, model=False, info=info,
                      device=model_device(model))  # batches go where the model is
    prepare = run.prepare()
    torch.manual_seed(cfg.training.seed)
    preds, targets, masks, extra = [], [], [], {"index": [], "site": [], "part": []}
    for batch in run.batches(split, shuffle=False)(0):
        out = model(prepare(batch))
        preds.append(out["pred"].float().cpu())  # metrics are numpy: gathered on the CPU
        targets.append(out["target"].cpu())
        if out.get("mask") is not None:
            masks.append(out["mask"].cpu())
        extra["index"].append(batch["index"])
        if "site" in batch:
            extra["site"].append(batch["site"])
        if "part" in batch:
            extra["part"] += list(batch["part"])
    if not preds:
        raise TrainsetError(f"{dataset_path}: split {split!r} is empty. Fix: evaluate on a split with samples")
    pred, target = _stack(preds), _stack(targets)
    mask = _stack(masks).numpy() if masks else None
    extra = {k: (v if k == "part" else torch.cat(v).numpy()) for k, v in extra.items() if len(v)}
    order = np.argsort(extra["index"], kind="stable")  # stored order, as the baselines read the split
    pred, target = pred[torch.from_numpy(order)], target[torch.from_numpy(order)]
    mask = mask[order] if mask is not None else None
    extra = {k: ([v[i] for i in order] if k == "part" else v[order]) for k, v in extra.items()}
    return Predictions(_to_data_units(pred, scalers, info, extra), _to_data_units(target, scalers, info, extra),
                       mask, extra)


def _stack(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Concatenate batches whose trailing dims may differ (mixed-world padding)."""
    shape = np.max([t.shape for t in tensors], axis=0)
    out = []
    for t in tensors:
        pad = []
        for have, want in zip(reversed(t.shape[1:]), reversed(shape[1:])):
            pad += [0, int(want - have)]
        out.append(torch.nn.functional.pad(t, pad) if any(pad) else t)
    return torch.cat(out)


def _to_data_units(values: torch.Tensor, scalers: Any, info: dict, extra: dict) -> np.ndarray:
    """Undo the target scaling of regression tasks (classification outputs are left as logits)."""
    from trainset.tasks import TASKS

    spec = TASKS.get(info.get("task"))
    variable = spec.target_scaler if spec is not None else None
    if scalers is None or variable is None or variable not in getattr(scalers, "specs", {}):
        return values.numpy()
    parts = extra.get("part") or None
    return np.asarray(scalers.inverse(variable, values, part=parts) if parts else scalers.inverse(variable, values))
