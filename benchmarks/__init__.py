"""benchmarks: measurements, never tests. Results go to docs/performance.md."""
