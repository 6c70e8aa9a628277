"""``python -m akdg`` is the ``akdg`` command (what the Snakemake rules call, venv or not)."""

import sys

from akdg.cli import main

sys.exit(main())
