"""consensus.sim: the seeded, fault-injecting simulator (may use a seeded random.Random)."""
