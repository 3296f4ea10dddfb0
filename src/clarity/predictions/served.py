"""The promoted depression classifier, loaded once per model version per process.

Loading verifies every booster file against its recorded SHA-256 and reads a few
megabytes of JSON, so it is done once per version (in a worker thread) and kept; a newly
promoted version is a new key. A model that cannot answer (files altered, wrong kind, no
interval ensemble) is refused with 503 naming why: the endpoint never falls back to
anything else.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from typing import Final

from clarity.errors import AppError
from clarity.logging import get_logger
from clarity.ml.boosted import BoostedModel
from clarity.ml.registry import BOOSTED_CLASSIFIER
from clarity.ml.registry.service import ServedModel
from clarity.predictions.compute import unservable

log = get_logger(__name__)

_KEEP: Final = 4  # versions kept in memory (the promoted one and a few recent)
_loaded: OrderedDict[uuid.UUID, BoostedModel] = OrderedDict()


def _unusable(served: ServedModel, why: str) -> AppError:
    return AppError(
        503,
        "model_unavailable",
        f"The promoted {served.name} version {served.version} cannot be served: {why}. "
        "An administrator promotes a working version with `clarity ml promote`.",
    )


async def boosted_model(served: ServedModel) -> BoostedModel:
    """The fitted classifier of ``served``, from memory or loaded and checked once."""
    model = _loaded.get(served.id)
    if model is not None:
        _loaded.move_to_end(served.id)
        return model
    if served.kind != BOOSTED_CLASSIFIER:
        raise _unusable(served, f"its kind is {served.kind!r}, not {BOOSTED_CLASSIFIER!r}")
    try:
        model = await asyncio.to_thread(BoostedModel.load, served.directory)
    except (ValueError, KeyError, TypeError) as exc:
        log.error(
            "predictions.model_load_failed",
            model=served.name,
            version=served.version,
            error=str(exc),
        )
        raise _unusable(served, "its files are missing or do not match their SHA-256") from None
    why = unservable(model)
    if why is not None:
        raise _unusable(served, why)
    _loaded[served.id] = model
    while len(_loaded) > _KEEP:
        _loaded.popitem(last=False)
    return model


def forget() -> None:
    """Drop every loaded model (tests; a process otherwise keeps them until it exits)."""
    _loaded.clear()
