"""CPU per ed25519 signature: libsodium one at a time, the C check alone, C batches.

    python -m benchmarks.signatures [--rounds 15] [--keys 4] [--sizes 2,16,64,90,256]
        [--sums 4,8,12,16]

Signs 256 messages of 150 bytes (an attest's signed bytes are about that) with
``--keys`` keys, as the devnet's four banks sign the load generator's attests.
Each round times, in turn (process CPU): libsodium's ``crypto_sign_open`` over
the 256, the rule's C single check (``signature_rule.verify`` on a fresh
triple), ``verify_batch`` over the first n for each size, and over the 256
with one forgery (``forged_256``: the whole sum fails, then each is checked
alone). It prints the median µs a signature of each, and the ratio to
libsodium, all from one run (docs/privacy.md, "Signatures checked in
batches"; docs/performance.md). ``sum_n`` times the weighted sum alone over the
first n (``signature_rule.sum_holds``), also below ``MIN_BATCH``, where
``verify_batch`` checks one by one: it is what sets ``MIN_BATCH``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence

from nacl.bindings import crypto_sign_open
from nacl.signing import SigningKey

from ledger import signature_rule
from ledger.signature_rule import Triple

MESSAGE_BYTES = 150
SIGNATURES = 256


def triples(keys: int) -> list[Triple]:
    signers = [SigningKey.generate() for _ in range(keys)]
    made = []
    for i in range(SIGNATURES):
        signer = signers[i % keys]
        message = os.urandom(MESSAGE_BYTES)
        made.append((bytes(signer.verify_key), message, signer.sign(message).signature))
    return made


def cpu_us_per_signature(run: Callable[[], object], count: int) -> float:
    start = time.process_time()
    run()
    return (time.process_time() - start) / count * 1e6


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--keys", type=int, default=4)
    parser.add_argument("--sizes", default="2,16,64,90,256")
    parser.add_argument("--sums", default="4,8,12,16")
    parser.add_argument("--json", action="store_true", help="one JSON object, not a table")
    args = parser.parse_args(argv)
    if not signature_rule.NATIVE_BATCH:
        print("the native module is not built (make install): nothing to compare", file=sys.stderr)
        return 2
    sizes = [int(size) for size in args.sizes.split(",")]
    sums = [int(size) for size in args.sums.split(",")] if args.sums else []
    if any(not 1 <= size <= SIGNATURES for size in sizes + sums):
        parser.error(f"sizes are 1..{SIGNATURES}")
    made = triples(args.keys)
    # The middle signature over other bytes: its encodings are sound, so the
    # whole sum is computed and fails, then each is checked alone (the worst case).
    key, message, signature = made[SIGNATURES // 2]
    forged = list(made)
    forged[SIGNATURES // 2] = (key, message + b"!", signature)
    samples: dict[str, list[float]] = {"libsodium": [], "c_single": []}
    samples.update({f"batch_{size}": [] for size in sizes})
    samples.update({f"sum_{size}": [] for size in sums})
    samples["forged_256"] = []
    for _ in range(args.rounds):

        def libsodium() -> None:
            for key, message, signature in made:
                crypto_sign_open(signature + message, key)

        def single() -> None:
            for triple in made:
                if not signature_rule.verify(*triple):
                    raise SystemExit("an honest signature failed the rule")

        samples["libsodium"].append(cpu_us_per_signature(libsodium, SIGNATURES))
        samples["c_single"].append(cpu_us_per_signature(single, SIGNATURES))
        for size in sizes:
            batch = made[:size]

            def batched(batch: list[Triple] = batch) -> None:
                if not all(signature_rule.verify_batch(batch)):
                    raise SystemExit("an honest batch failed the rule")

            samples[f"batch_{size}"].append(cpu_us_per_signature(batched, size))
        for size in sums:
            batch = made[:size]
            repeats = max(1, SIGNATURES // size)  # a timing of about 256 signatures

            def summed(batch: list[Triple] = batch, repeats: int = repeats) -> None:
                for _ in range(repeats):
                    if not signature_rule.sum_holds(batch):
                        raise SystemExit("an honest sum failed the rule")

            samples[f"sum_{size}"].append(cpu_us_per_signature(summed, size * repeats))

        def with_forgery() -> None:
            if sum(signature_rule.verify_batch(forged)) != SIGNATURES - 1:
                raise SystemExit("the forgery was not found alone")

        samples["forged_256"].append(cpu_us_per_signature(with_forgery, SIGNATURES))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    sodium = medians["libsodium"]
    if args.json:
        print(json.dumps({"us_per_signature": medians, "rounds": args.rounds, "keys": args.keys}))
        return 0
    print(f"{'path':<12} {'µs/signature':>13} {'÷ libsodium':>12}   (medians of {args.rounds})")
    for name, value in medians.items():
        print(f"{name:<12} {value:>13.1f} {value / sodium:>12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
