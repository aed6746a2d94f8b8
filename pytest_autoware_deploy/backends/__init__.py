"""Backend runners behind one interface; ``make_runner`` picks one for a spec's backend id."""

from .base import Runner

__all__ = ["Runner"]
