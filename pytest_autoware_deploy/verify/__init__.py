"""Cross-backend verification maths: statistics per output and the tolerance check (no pytest here)."""

from .compare import Tolerance, compare_output
from .stats import output_stats

__all__ = ["Tolerance", "compare_output", "output_stats"]
