"""Wyoming servers as magoo backends: ``[stt]``, ``[tts]``, ``[wake]`` and ``[responder] wyoming``.

Each backend is a Wyoming client (:mod:`magoo_wyoming.connection`); :mod:`.service` finds its
server (an address, or ``uri = "auto"`` through zeroconf) and reads its ``describe``.
"""
