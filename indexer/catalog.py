"""Products and interactions: the shapes every ingest format produces."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field


@dataclass
class Product:
    """One product as the shop shows it and the indexes store it."""

    item_id: str
    title: str
    description: str = ""
    price: float | None = None
    category: str = ""  # a path, levels joined by " > "
    brand: str = ""
    image_url: str = ""
    rating_avg: float | None = None
    rating_count: int = 0
    popularity: float = 0.0
    available: bool = True
    attributes: dict[str, str] = field(default_factory=dict)

    def embedding_text(self) -> str:
        """The text embedded for this product, built from every useful field."""
        parts = [self.title]
        if self.brand:
            parts.append(f"Brand: {self.brand}")
        if self.category:
            parts.append(f"Category: {self.category}")
        if self.description and self.description != self.title:
            parts.append(self.description)
        if self.attributes:
            parts.append(
                "; ".join(f"{key}: {value}" for key, value in self.attributes.items())
            )
        return ". ".join(part for part in parts if part)

    def search_text(self) -> str:
        """Free text for the keyword index beyond the title."""
        parts = [self.description, self.brand, self.category]
        parts.extend(self.attributes.values())
        return " ".join(part for part in parts if part)

    def to_doc(self) -> dict:
        """A plain dict, as stored and as sent to a search backend."""
        return asdict(self)

    @classmethod
    def from_doc(cls, doc: dict) -> Product:
        known = {name: doc[name] for name in cls.__dataclass_fields__ if name in doc}
        return cls(**known)


@dataclass(frozen=True)
class Interaction:
    """One shopper's event on one product.

    ``kind`` is ``purchase``, ``rating``, ``like``, ``view`` or ``review``;
    ``weight`` is the strength the collaborative model sees (for a purchase
    the quantity, for a rating the stars).
    """

    user_id: str
    item_id: str
    kind: str
    weight: float
    timestamp: float  # seconds since the epoch, UTC


CATEGORY_SEPARATOR = " > "


def category_levels(path: str) -> list[str]:
    """``"Home > Kitchen"`` as ``["Home", "Kitchen"]``."""
    return [level.strip() for level in path.split(">") if level.strip()]


def category_ancestors(path: str) -> list[str]:
    """``"A > B > C"`` gives ``["A", "A > B", "A > B > C"]``, itself last."""
    levels = category_levels(path)
    return [CATEGORY_SEPARATOR.join(levels[: n + 1]) for n in range(len(levels))]


def text_hash(text: str, model_name: str) -> str:
    """Key of an embedding: the text and the model that embedded it."""
    digest = hashlib.sha256()
    digest.update(model_name.encode())
    digest.update(b"\0")
    digest.update(text.encode())
    return digest.hexdigest()
