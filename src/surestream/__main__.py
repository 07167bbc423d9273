"""``python -m surestream`` is the ``surestream`` command."""

import sys

from surestream.cli.main import main

sys.exit(main())
