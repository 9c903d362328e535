"""devnet: a local four-node network in one command.

Theory of operation
-------------------
``python -m devnet up`` generates keys and a genesis file under ``.devnet/``,
starts four real node processes on 127.0.0.1, waits until they are healthy and
runs a short demo through the client SDK. It never overwrites a key and
refuses to start over a running devnet.

Dependency rule: imports ``node`` and ``client``; nothing imports ``devnet``.
"""
