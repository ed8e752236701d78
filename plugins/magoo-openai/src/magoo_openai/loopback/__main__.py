"""``python -m magoo_openai.loopback``: serve until Ctrl-C."""

from .server import main

main()
