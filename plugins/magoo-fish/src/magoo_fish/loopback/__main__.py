"""``python -m magoo_fish.loopback``: serve until Ctrl-C."""

from .server import main

main()
