"""Timing helpers shared by the benchmarks."""
import time


def interleaved_best(fa, fb, rounds):
    """Best time of each of two functions, timed alternately: a noisy spell on a shared
    machine then slows both sides, not only the one that happened to run in it."""
    ba = bb = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        fa()
        ba = min(ba, time.perf_counter() - t)
        t = time.perf_counter()
        fb()
        bb = min(bb, time.perf_counter() - t)
    return ba, bb
