"""The tutorial's model: its ten binary features, its example input and their published means.

The tutorial's own file: the one place (with ``handler.seed`` and the tutorial's training data)
that names its features. Everything else reads a model's inputs from its manifest.
"""

from __future__ import annotations

FEATURES: tuple[str, ...] = ("G1", "G2", "G3", "G4", "G5", "G6", "G7", "G8", "G9", "G10")
# The tutorial's example input, as API Gateway passes it (strings).
TUTORIAL_QUERY: dict[str, str] = {
    "G1": "1", "G2": "0", "G3": "1", "G4": "1", "G5": "0",
    "G6": "0", "G7": "1", "G8": "0", "G9": "1", "G10": "0",
}  # fmt: skip
# The published share of 1s per feature in the tutorial's games-expand.csv (../shared/data).
FEATURE_MEANS = (0.2296, 0.1319, 0.2191, 0.0868, 0.2066, 0.1215, 0.2727, 0.3092, 0.0599, 0.1340)


def is_tutorial(features) -> bool:
    """Whether a model's features are the tutorial's (its names, in its order)."""
    return tuple(features) == FEATURES
