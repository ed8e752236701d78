"""``python -m magoo_core.cli``: the same as the ``magoo`` command."""

from . import main

main()
