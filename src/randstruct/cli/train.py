"""``randstruct train``: a (g x seed) grid of networks as one ensemble."""

from __future__ import annotations

import argparse

from randstruct.cli.common import (UsageError, add_cluster_options, executor_from_args, parse_floats,
                                   parse_task_params, print_thread_hint)
from randstruct.engine.model import PARAMS
from randstruct.engine.config import LOSSES
from randstruct.engine.train import LR_RULES, OPTIMIZERS, TrainConfig
from randstruct.tasks import TASKS, get_task


def register(sub) -> None:
    t = sub.add_parser("train", help="train a (g x seed) grid of networks as one ensemble",
                       description="Train every (g, seed) network on one task as a single ensemble "
                                   "computation and write a run directory.")
    t.add_argument("--task", required=True,
                   help=f"a registered name ({', '.join(sorted(TASKS))}), a class as package.module:ClassName, "
                        "or a NeuroGym environment as neurogym:EnvId-v0 (pip install 'randstruct[neurogym]')")
    t.add_argument("--N", type=int, required=True, help="number of recurrent units (>= 2)")
    t.add_argument("--g", required=True, help="gains of W0: 0,0.9,1.8 or start:stop:step")
    t.add_argument("--seeds", type=int, default=1, help="networks per g (samples); default 1")
    t.add_argument("--first-seed", type=int, default=0, help="seed of the first sample; default 0")
    t.add_argument("--epochs", type=int, required=True, help="number of updates (one fresh batch each)")
    t.add_argument("--out", required=True, help="run directory to create")
    t.add_argument("--batch", type=int, default=None,
                   help="trials per update; default 32, or 1 for deterministic tasks")
    t.add_argument("--optimizer", default="adam", help=f"{' or '.join(OPTIMIZERS)}; default adam")
    t.add_argument("--lr-rule", default="over_n",
                   help="; ".join(f"{k}: {v}" for k, v in LR_RULES.items()) + "; default over_n")
    t.add_argument("--lr0", type=float, default=0.05, help="base learning rate; default 0.05")
    t.add_argument("--train", default="wi,wrec,wo", help=f"trained parameters among {','.join(PARAMS)}")
    t.add_argument("--nonlinearity", default="tanh", help="tanh, linear, relu or softplus; default tanh")
    t.add_argument("--noise-rec", type=float, default=0.0,
                   help="state noise sigma: sqrt(dt) sigma xi added to every Euler step (docs/model.md); default 0")
    t.add_argument("--noise-x0", type=float, default=0.0, help="initial-state noise sigma, per trial; default 0")
    t.add_argument("--noise-in", type=float, default=0.0,
                   help="input noise sigma: sigma xi / sqrt(dt) added to the inputs; default 0")
    t.add_argument("--readout", default="small",
                   help="small (output entries ~1/N, the 2020 paper's) or large (unit-norm columns); default small")
    t.add_argument("--readout-from", default="rates",
                   help="rates (z = Wout^T phi(x), the 2020 paper's) or state (z = Wout^T x, Schuessler et al. "
                        "2024); default rates")
    t.add_argument("--dale", type=float, default=None,
                   help="Dale's law with this fraction of excitatory units, in (0, 1); default: no sign constraint")
    t.add_argument("--sparsity", type=float, default=0.0,
                   help="fraction of absent recurrent connections (fixed mask per network), in [0, 1); default 0")
    t.add_argument("--l2-w", type=float, default=0.0, help="penalty lambda mean(W^2); default 0")
    t.add_argument("--l2-dw", type=float, default=0.0, help="penalty lambda mean((W - W0)^2); default 0")
    t.add_argument("--l2-rates", type=float, default=0.0, help="penalty lambda mean(rates^2); default 0")
    t.add_argument("--dt", type=float, default=None, help="Euler step in units of tau; default: the task's")
    t.add_argument("--task-param", action="append", default=[], metavar="NAME=VALUE",
                   help="override a task parameter (repeatable), e.g. T=100; for neurogym: tasks, keys other "
                        "than tau_ms, score, max_ms go to the environment, e.g. sigma=0.5")
    t.add_argument("--loss", default="mse",
                   help=f"{' or '.join(LOSSES)} (cross_entropy: tasks with labels, e.g. neurogym:); default mse")
    t.add_argument("--rec-step", type=int, default=None,
                   help="record the SVs of W - W0 every this many epochs; default epochs/200")
    t.add_argument("--sv-top", type=int, default=None, help="keep only the largest SVs")
    t.add_argument("--record-weights", action="store_true", help="also store W at recorded epochs")
    t.add_argument("--eig-top", type=int, default=None,
                   help="also record the leading eigenvalues of W (by real part) at recorded epochs")
    t.add_argument("--shared-vector", action="store_true",
                   help="one vector as input and (divided by N) output weights (tasks with 1 in, 1 out)")
    t.add_argument("--x0-from-input", action="store_true",
                   help="start every trial from the input vector, x0 = Win (one-input tasks)")
    t.add_argument("--dtype", default="float32", help="float32 or float64")
    t.add_argument("--device", default="cpu", help="cpu or cuda")
    t.add_argument("--checkpoint-every", type=int, default=None,
                   help="epochs between checkpoints; default epochs/20")
    t.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    t.add_argument("--resume", action="store_true",
                   help="continue an interrupted run in --out, or a finished one to a larger --epochs")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_cluster_options(t)
    t.set_defaults(handler=cmd_train)


def _stored_rec_step(a: argparse.Namespace) -> int | None:
    """With --resume, the record grid of the run being continued (its default follows --epochs,
    which an extended run changes)."""
    if not a.resume:
        return None
    from randstruct import store

    try:
        return int(store.read_config(a.out)["spec"]["train"]["rec_step"])
    except (store.RunError, KeyError, TypeError, ValueError):
        return None  # prepare_run_dir says what is wrong with the folder


def _spec_from_args(a: argparse.Namespace):
    from randstruct.runs import RunSpec

    if a.seeds < 1:
        raise UsageError(f"--seeds must be >= 1, got {a.seeds}")
    if a.first_seed < 0:
        raise UsageError(f"--first-seed must be >= 0, got {a.first_seed}")
    if a.first_seed + a.seeds > 2**63:
        raise UsageError(f"--first-seed + --seeds must be <= 2^63 (seeds are 64-bit integers), "
                         f"got {a.first_seed} + {a.seeds}")
    task_params = parse_task_params(a.task_param)
    if a.dt is not None:
        if not 0 < a.dt <= 1:
            raise UsageError(f"--dt must be in (0, 1], got {a.dt}")
        task_params["dt"] = a.dt
    trainable = tuple(x for x in a.train.split(",") if x)
    task = get_task(a.task, **task_params)
    batch = a.batch if a.batch is not None else (32 if task.stochastic else 1)
    rec_step = a.rec_step if a.rec_step is not None else _stored_rec_step(a) or max(1, a.epochs // 200)
    config = TrainConfig(epochs=a.epochs, batch_size=batch, optimizer=a.optimizer, lr_rule=a.lr_rule,
                         lr0=a.lr0, trainable=trainable, rec_step=rec_step, sv_top=a.sv_top,
                         record_weights=a.record_weights, loss=a.loss, eig_top=a.eig_top,
                         l2_w=a.l2_w, l2_dw=a.l2_dw, l2_rates=a.l2_rates)
    seeds = tuple(range(a.first_seed, a.first_seed + a.seeds))
    return RunSpec(task=a.task, n=a.N, g=tuple(parse_floats(a.g, "--g")), seeds=seeds, train=config,
                   task_params=task_params, nonlinearity=a.nonlinearity, dtype=a.dtype, device=a.device,
                   shared_vector=a.shared_vector, x0_from_input=a.x0_from_input, noise_rec=a.noise_rec,
                   noise_x0=a.noise_x0, noise_in=a.noise_in, readout=a.readout, dale=a.dale, sparsity=a.sparsity,
                   readout_from=a.readout_from)


def trained_line(attrs: dict, n_net: int, epochs: int) -> str:
    """What was trained and how fast: sharded, the command's wall time and the network-epochs it
    trained itself (not those of shards reused from an earlier command)."""
    wall = attrs.get("cluster_wall_time_s", attrs["train_wall_time_s"])
    done = attrs.get("cluster_network_epochs", n_net * epochs)
    if done == 0:
        return f"{n_net} networks x {epochs} epochs: every shard was already trained (reused), merged in {wall:.1f} s"
    return f"trained {n_net} networks x {epochs} epochs in {wall:.1f} s ({done / max(wall, 1e-9):,.1f} network-epochs/s)"


def cmd_train(a: argparse.Namespace) -> int:
    from randstruct.runs import execute

    spec = _spec_from_args(a)
    if a.checkpoint_every is not None and a.checkpoint_every < 1:
        raise UsageError(f"--checkpoint-every must be >= 1, got {a.checkpoint_every}")
    with executor_from_args(a) as executor:
        run = execute(spec, a.out, overwrite=a.overwrite, resume=a.resume, progress=not a.no_progress,
                      checkpoint_every=a.checkpoint_every, executor=executor)
    print(f"{trained_line(run.data.attrs, run.data.sizes['net'], spec.train.epochs)} -> {a.out}")
    if a.scheduler is None:
        print_thread_hint(spec.device)
    print(f"next: randstruct info {a.out}")
    return 0
