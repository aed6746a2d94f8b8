"""``python -m pytest_autoware_deploy``: same as the ``autoware-deploy`` command."""

import sys

from .cli import main

sys.exit(main())
