"""numpy's (OpenBLAS's) GEMM rate on this machine, for the benchmark's comparison.

python3 bench/numpy_gemm.py n d m [m ...]
python3 bench/numpy_gemm.py --spells S
Prints one JSON line: the square 2000^3 dgemm rate and, per m, the two GEMMs of one
weight-space right-hand side (Z = X W^T, G = P X), in GFLOP/s, fastest of batches of at least
2 ms taken for 3 s (as examples/bench.rs times ntkdyn).
"""
import json
import sys
import time

import numpy as np


def rate(f, flop):
    f()
    reps = 1
    while True:
        t = time.perf_counter()
        for _ in range(reps):
            f()
        if time.perf_counter() - t > 0.002:
            break
        reps *= 2
    best, sampling = float("inf"), time.perf_counter()
    while time.perf_counter() - sampling < 3.0:
        t = time.perf_counter()
        for _ in range(reps):
            f()
        best = min(best, (time.perf_counter() - t) / reps)
    return flop / best / 1e9


def spells(seconds):
    """min, median and max GFLOP/s of square 1000^3 products over `seconds` of sampling."""
    rng = np.random.default_rng(0)
    a, b = rng.random((1000, 1000)), rng.random((1000, 1000))
    rates, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        a @ b
        rates.append(2e9 / (time.perf_counter() - t) / 1e9)
    rates.sort()
    print(json.dumps({"min": rates[0], "median": rates[len(rates) // 2], "max": rates[-1]}))


def main():
    if sys.argv[1] == "--spells":
        spells(float(sys.argv[2]))
        return
    n, d = int(sys.argv[1]), int(sys.argv[2])
    rng = np.random.default_rng(0)
    a, b = rng.random((2000, 2000)), rng.random((2000, 2000))
    out = {"square": rate(lambda: a @ b, 2 * 2000**3), "rhs_gemms": {}}
    for m in map(int, sys.argv[3:]):
        w, x, p = rng.standard_normal((m, d)), rng.standard_normal((n, d)), rng.standard_normal((m, n))
        z, g = np.empty((n, m)), np.empty((m, d))

        def two():
            np.matmul(x, w.T, out=z)
            np.matmul(p, x, out=g)

        out["rhs_gemms"][str(m)] = rate(two, 4 * n * m * d)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
