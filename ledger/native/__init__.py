"""C versions of the ledger's hot loops, built by ``python -m ledger.native.build``.

``make install`` builds them once; without a compiler, Python's headers or
OpenSSL's, the pure-Python code in their place is used and says so in one line
at install time. The Python code stays the specification: property tests check
that both give the same results.
"""
