"""pytest-autoware-deploy: deployment of perception models as pytest tests.

The pipeline is spec -> export -> backends -> verify / evaluate / bench -> report;
each stage lives in its own subpackage and the pytest glue lives in ``plugin`` and ``fixtures``.
"""

__version__ = "0.1.0"
