"""``magoo meter``: a live terminal view of a running assistant.

:mod:`.board` folds what the run says (levels ten times a second, every event as JSON) into what
is shown; :mod:`.render` draws it in plain ANSI; :mod:`.terminal` owns the terminal (the screen,
keys); :mod:`.feeds` gets the run's levels and events and carries the keys' commands, from an
engine in this process (``-p PROFILE``) or from a running magoo's WebSocket (``--url``);
:mod:`.screen` ties them together.
"""
