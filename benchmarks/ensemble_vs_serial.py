"""Ensemble training vs one network at a time, measured in the same run.

    python benchmarks/ensemble_vs_serial.py [--N 256] [--E 15] [--epochs 5] [--repeats 3]

Prints network-epochs/s (min / median / max over repeats) of (a) the serial reference (autograd,
Python loop over time, torch.optim.Adam), (b) the ensemble trainer with E = 1 run E times, i.e. one
network at a time, and (c) the ensemble trainer with all E networks at once, on flip-flop.
"""

import argparse

from randstruct.bench import format_rows, matmul_rate, measure_ensemble, measure_serial, row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--N", type=int, default=256)
    p.add_argument("--E", type=int, default=15)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    serial = measure_serial(a.N, a.epochs, a.repeats)
    single = measure_ensemble(a.N, 1, a.epochs, a.repeats)
    single.label = "trainer, one network at a time"
    ensemble = measure_ensemble(a.N, a.E, a.epochs, a.repeats)
    peak = matmul_rate(a.N, a.E, 32)
    print(format_rows([row(m, serial, peak) for m in (serial, single, ensemble)]))


if __name__ == "__main__":
    main()
