"""Find the primes below inputData.n with a sieve of Eratosthenes: a CPU-bound function."""

import math
import time

MAX_N = 50_000_000


def handler(event, context):
    n = int(event.get("n", 100))
    if not 0 <= n <= MAX_N:
        raise ValueError(f"inputData.n must be from 0 to {MAX_N}, got {n}")

    started = time.perf_counter()
    sieve = bytearray([1]) * n
    sieve[0:2] = b"\x00\x00"[: min(n, 2)]
    for candidate in range(2, math.isqrt(max(n - 1, 0)) + 1):
        if sieve[candidate]:
            sieve[candidate * candidate :: candidate] = bytes(len(range(candidate * candidate, n, candidate)))
    count = sum(sieve)
    largest = max((i for i in range(n - 1, 1, -1) if sieve[i]), default=None) if count else None
    elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
    print(f"sieved {n} numbers in {elapsed_ms} ms")
    return {"n": n, "count": count, "largest": largest, "sieveMillis": elapsed_ms}
