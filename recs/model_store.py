"""Trained recommendation artifacts on disk, versioned like the search index."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field

from indexer.versions import current_version, make_current, new_version_name, prune
from recs.collaborative import CollaborativeModel
from recs.hybrid import HybridConfig

log = logging.getLogger(__name__)

KEEP_VERSIONS = 2
RECIPE_FILE = "recipe.json"
COOCCURRENCE_FILE = "cooccurrence.npz"


@dataclass
class TrainedModels:
    """Everything ``train`` produces, loaded together."""

    collaborative: CollaborativeModel
    trending: list[str]
    popularity: dict[str, int]
    trained_at: float
    version: str
    recipe: HybridConfig = field(default_factory=HybridConfig)
    # implicit's item-to-item cosine model over the same items as
    # ``collaborative``; None for a model saved before it existed.
    cooccurrence: object | None = None


class ModelUnusable(Exception):
    """The current model version exists but cannot be read (files missing or
    corrupt); the message names the version and how to replace it."""


class ModelStore:
    """Versions of trained models under ``root``, with a ``current`` symlink."""

    def __init__(self, root: str):
        self.root = root
        os.makedirs(root, exist_ok=True)

    def save(
        self,
        collaborative: CollaborativeModel,
        trending: list[str],
        popularity: dict[str, int],
        recipe: HybridConfig | None = None,
        cooccurrence=None,
    ) -> str:
        """Write a new version and make it current; returns its name.

        ``recipe`` is the hybrid configuration the shop's for-you list is to
        use with this model; ``cooccurrence`` an item-to-item model fitted on
        the same items.
        """
        name = new_version_name("model")
        path = os.path.join(self.root, name)
        collaborative.save(path)
        (recipe or HybridConfig()).save(os.path.join(path, RECIPE_FILE))
        if cooccurrence is not None:
            cooccurrence.save(os.path.join(path, COOCCURRENCE_FILE))
        with open(os.path.join(path, "signals.json"), "w", encoding="utf-8") as out:
            json.dump(
                {
                    "trending": trending,
                    "popularity": popularity,
                    "trained_at": time.time(),
                },
                out,
            )
        make_current(self.root, name)
        prune(self.root, "model", KEEP_VERSIONS)
        return name

    def current_version(self) -> str | None:
        return current_version(self.root)

    def load(self) -> TrainedModels | None:
        """The current version, or None when nothing was trained yet.

        Raises
        ------
        ModelUnusable
            When the current version's files are missing or cannot be parsed.
        """
        version = self.current_version()
        if version is None:
            return None
        path = os.path.join(self.root, version)
        try:
            with open(os.path.join(path, "signals.json"), encoding="utf-8") as handle:
                signals = json.load(handle)
            recipe_path = os.path.join(path, RECIPE_FILE)
            recipe = (
                HybridConfig.load(recipe_path)
                if os.path.exists(recipe_path)
                else HybridConfig()
            )
            cooccurrence = None
            cooccurrence_path = os.path.join(path, COOCCURRENCE_FILE)
            if os.path.exists(cooccurrence_path):
                from implicit.nearest_neighbours import CosineRecommender

                cooccurrence = CosineRecommender.load(cooccurrence_path)
            return TrainedModels(
                collaborative=CollaborativeModel.load(path),
                trending=list(signals["trending"]),
                popularity=dict(signals["popularity"]),
                trained_at=float(signals["trained_at"]),
                version=version,
                recipe=recipe,
                cooccurrence=cooccurrence,
            )
        # Whatever a damaged file makes numpy, zipfile or json raise, the
        # model is equally unusable.
        except Exception as exc:
            raise ModelUnusable(
                f"model {version} in {self.root} cannot be read "
                f"({type(exc).__name__}: {exc}); train a new one with: "
                "python -m indexer train"
            ) from exc
