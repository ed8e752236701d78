"""``python -m magoo_openai_realtime.loopback``: serve until Ctrl-C."""

from .server import main

main()
