"""`python -m glassformer ...` is the same as the `glassformer` command (used by torchrun)."""

import sys

from glassformer.cli import main

sys.exit(main())
