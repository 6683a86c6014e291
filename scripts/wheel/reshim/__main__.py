"""`python -m reshim ARGS`: the bundled reshim CLI, e.g.
`python -m reshim run -- python app.py` or `python -m reshim ls`."""

import sys

from ._cli import reshim

sys.exit(reshim())
