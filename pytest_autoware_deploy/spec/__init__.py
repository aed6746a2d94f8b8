"""Deploy specs: AWML-style Python configs (mmengine Config) validated into a ``DeploySpec``."""

from .load import load_spec
from .model import DeploySpec

__all__ = ["DeploySpec", "load_spec"]
