"""The load generator's engine (issues 9 and 12): register and fund senders, sign and
prove every tx before the clock starts, submit at a rate, follow commits, report.

``run.run_load`` is the entry point. ``python -m benchmarks.load`` (and the load
suite) are front ends over it; ``python -m devnet chaos`` drives it with
``kind="mixed"`` while it breaks the devnet. It lives here because the dependency
rule lets ``devnet`` import nothing of ``benchmarks``.
"""
