"""``randstruct bench``: training throughput against the serial reference and the matmul peak."""

from __future__ import annotations

import argparse
import json

from randstruct.cli.common import UsageError


def register(sub) -> None:
    bn = sub.add_parser("bench", help="training throughput: ensemble vs serial reference vs matmul peak",
                        description="Measure, in one invocation, network-epochs/s of the serial reference "
                                    "(one network at a time, autograd) and of the ensemble trainer on flip-flop "
                                    "(batch 32, 100 steps), the recurrent GFLOP/s against the batched-matmul rate "
                                    "at the same shape, the share of task generation, and peak memory.")
    bn.add_argument("--quick", action="store_true", help="N = 256 with E in {1, 8, 40} only")
    bn.add_argument("--epochs", type=int, default=None,
                    help="epochs per timed repeat; default 4 on a CPU, 100 on a GPU")
    bn.add_argument("--repeats", type=int, default=3, help="timed repeats (min/median/max); default 3")
    bn.add_argument("--device", default="cpu", help="cpu or cuda")
    bn.add_argument("--json", default=None, help="also write the rows to this JSON file")
    bn.add_argument("--ensembles", default=None,
                    help="ensemble sizes E at N = 256 only, e.g. 40 (replaces the default sizes and --quick)")
    bn.add_argument("--models", default="default",
                    help="model variants to time beside the default model, comma-separated among "
                         "default, noise, dale, sparse, l2, all (docs/model.md); default: the default model only")
    bn.set_defaults(handler=cmd_bench)


def cmd_bench(a: argparse.Namespace) -> int:
    import platform

    import torch

    from randstruct.tooling import bench
    from randstruct.engine.device import check_device

    if a.epochs is None:
        a.epochs = 100 if a.device.startswith("cuda") else 4
    if a.epochs < 1 or a.repeats < 1:
        raise UsageError(f"--epochs and --repeats must be >= 1, got {a.epochs} and {a.repeats}")
    check_device(a.device)
    sizes = ((256, (1, 8, 40)),) if a.quick else bench.DEFAULT_SIZES
    if a.ensembles is not None:
        try:
            ensembles = tuple(int(x) for x in a.ensembles.split(",") if x)
        except ValueError:
            ensembles = ()
        if not ensembles or min(ensembles) < 1:
            raise UsageError(f"--ensembles must be integers >= 1 separated by commas, got {a.ensembles!r}")
        sizes = ((256, ensembles),)
    models = tuple(m for m in a.models.split(",") if m)
    bad = [m for m in models if m not in bench.MODELS]
    if bad or not models:
        raise UsageError(f"unknown --models {','.join(bad) or a.models!r}; allowed: {', '.join(bench.MODELS)}")
    machine = torch.cuda.get_device_name() if a.device.startswith("cuda") else (
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")
    print(f"flip-flop, batch {bench.BATCH}; {machine}; torch {torch.__version__}")
    print("\n".join(bench.format_table([]).splitlines()[:2]))
    rows = bench.run_suite(sizes, a.epochs, a.repeats, a.device, models=models)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"machine": machine, "torch": torch.__version__, "rows": rows}, f, indent=2)
    return 0
