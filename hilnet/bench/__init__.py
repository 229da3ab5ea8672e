"""hilnet.bench: the bench file — which board plays which scenario node and how each link end is wired.

Like :mod:`hilnet.scenario`, this package only describes: ``model`` holds the
frozen values, ``load`` reads a bench file into them with every error at
FILE:LINE:COL, ``pairing`` checks a bench against a scenario. The backend
that acts on a bench (SSH, agents on boards, the emulator's ports) is
:mod:`hilnet.testbed.bench`. The format is documented in ``docs/bench.md``.
"""
