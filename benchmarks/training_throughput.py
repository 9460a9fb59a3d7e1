"""Training throughput of the ensemble trainer vs the serial reference (same as `randstruct bench`).

    python benchmarks/training_throughput.py [--quick] [--device cuda] [--json out.json]
"""

import sys

from randstruct.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
