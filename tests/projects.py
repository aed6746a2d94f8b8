"""Variants of conftest's tiny user project, for the tests of spec-local modules and the export key.

- ``write_helper_spec``: the model's math lives in helper modules (forward imports ``mathhelpers``
  lazily, which takes ``SCALE`` from ``constants``), so editing a constant changes the model's output
  while the model class's file stays as it was.
"""

from __future__ import annotations

from pathlib import Path

from .conftest import write_tiny_spec

SCALED_MODEL = '''

class Scaled(Tiny):
    """Tiny whose logits go through a helper module: the math outside the class's file."""

    def forward(self, x):
        from mathhelpers import scale  # imported lazily, inside forward

        return scale(super().forward(x))


def build_scaled(**kwargs):
    torch.manual_seed(0)
    return Scaled(**kwargs).eval()
'''

MATH_HELPERS = '''from constants import SCALE


def scale(y):
    return y * SCALE
'''


def write_helper_spec(directory: Path, scale="2.0", name="tiny") -> Path:
    spec = write_tiny_spec(directory, name=name,
                           extra="model = dict(builder='tinymodel:build_scaled', kwargs=dict(width=8))")
    with open(directory / "tinymodel.py", "a") as f:
        f.write(SCALED_MODEL)
    (directory / "mathhelpers.py").write_text(MATH_HELPERS)
    set_scale(directory, scale)
    return spec


def set_scale(directory: Path, scale: str):
    """Edit the constant (a new size too, so Python's bytecode cache cannot serve the old module)."""
    (directory / "constants.py").write_text(f"SCALE = {scale}\n")
