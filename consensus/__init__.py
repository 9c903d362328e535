"""consensus: PBFT as a pure, deterministic state machine.

Theory of operation
-------------------
A ``Replica`` is fed events (a client batch is ready, a peer message arrived,
a clock tick, a state transfer finished) and returns a list of actions (send,
broadcast, persist before sending, execute a batch, fetch state, report a
fault). It never reads a clock, a socket, a disk or a global random source, so
the same events give the same actions; that is what lets the seeded simulator
in ``consensus.sim`` explore faults and replay any failure exactly. The node
process (``node/``) is the only place that turns actions into I/O.

Entry points: ``consensus.replica.Replica`` (``step`` and ``restore``),
``consensus.config.ReplicaConfig``, the events in ``consensus.events``, the
actions in ``consensus.actions``, and
``consensus.certificate.verify_commit_certificate`` for clients and catch-up.
Safety never depends on timing: ticks only drive timeouts and retransmission.
``docs/consensus.md`` has the message table, invariants and timer rules.

Dependency rule: this package imports no other package of ours, and no
asyncio, aiohttp, plyvel, socket, time or global random (a test enforces it).
"""
