"""hilnet.controller: ``hilnet run`` without its reports.

``run`` (options, result, the whole run) -> ``session`` (the testbed, its
agents and links, the event log and the ledger) -> ``sequencer`` (the plan's
timeline on a Clock) -> ``teardown``; ``agents`` drives one agent process,
``schedule`` turns a link's script into the emulator's, ``eventlog`` writes
events.jsonl and ``checks`` judges a run from it (pure).
"""
