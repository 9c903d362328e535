"""node: the running validator process, and the only package with asyncio.

Theory of operation
-------------------
The runtime feeds events to the pure consensus core and carries out the
actions it returns: it persists votes before sending them, talks to peers over
authenticated WebSockets, keeps a bounded mempool, executes committed batches
through the ledger, and serves the HTTP API and metrics on 127.0.0.1.

Dependency rule: imports ``consensus``, ``ledger`` and ``privacy``.
"""
