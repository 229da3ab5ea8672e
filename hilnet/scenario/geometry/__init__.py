"""Where nodes are, and what follows from it: line-of-sight windows and light time (pure).

``positions`` and ``tle`` are plain Python (a board that never loads an orbit
scenario needs nothing more); ``frames``, ``ephemeris`` and ``solve`` need the
``orbits`` extra (``sgp4`` and ``numpy``) and are imported only when a scenario
places a node.
"""
