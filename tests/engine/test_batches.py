"""Training batches: member streams, and the worker processes that make them ahead."""

import numpy as np
import pytest
import torch

from randstruct.engine.batches import BatchStream, Prefetcher, make_batch
from randstruct.engine.model import Ensemble
from randstruct.engine.seeding import member_rng
from randstruct.errors import UserInputError
from randstruct.tasks import Batch, get_task

G = [0.0, 0.6, 1.2]


def _stream(task_name="flipflop", batch_size=4, seeds=1):
    task = get_task(task_name)
    ens = Ensemble.init(16, G, seeds, task.n_in, task.n_out)
    return task, ens, BatchStream(task, ens, batch_size)


@pytest.mark.parametrize("task_name", ["flipflop", "mante", "romo"])
def test_each_member_gets_its_own_trials_in_kernel_layout(task_name):
    task, ens, stream = _stream(task_name)
    inputs, targets, mask = stream.next()
    for e, (g, seed) in enumerate(zip(ens.g, ens.seed)):
        alone = task.sample(4, member_rng(int(seed), float(g), "train"))
        for got, want in zip((inputs, targets, mask), (alone.inputs, alone.targets, alone.mask)):
            np.testing.assert_array_equal(got[e].numpy(), want.transpose(1, 0, 2))


def test_make_batch_writes_into_given_arrays():
    task = get_task("romo")
    rngs = [np.random.default_rng(s) for s in (1, 2)]
    want = make_batch(task, [np.random.default_rng(s) for s in (1, 2)], 3)
    out = [np.full(a.shape, np.nan, a.dtype) for a in want]
    assert make_batch(task, rngs, 3, out=out) is out
    for a, b in zip(out, want):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_prefetched_batches_and_states_equal_the_plain_stream(workers):
    """Members split over worker processes: same batches in the same order, and the state after
    each handed-out batch is the plain stream's state after it."""
    _, _, plain = _stream(seeds=2)
    _, _, ahead = _stream(seeds=2)
    prefetch = Prefetcher(ahead, depth=3, workers=workers)
    try:
        assert prefetch.state() == plain.state()
        for _ in range(5):
            for a, b in zip(prefetch.next(), plain.next()):
                assert torch.equal(a, b)
            assert prefetch.state() == plain.state()
        checkpoint = plain.state()
        later = [plain.next() for _ in range(2)]
        prefetch.reset(checkpoint)
        for batch in later:
            for a, b in zip(prefetch.next(), batch):
                assert torch.equal(a, b)
    finally:
        prefetch.close()
    # the stream's own generators continue after the last batch handed out
    assert ahead.state() == plain.state()
    for a, b in zip(ahead.next(), plain.next()):
        assert torch.equal(a, b)


def test_a_failing_worker_reports_its_error():
    """A failure of the error policy (here bad input) reaches the trainer as itself; anything else
    (a bug) as a RuntimeError carrying the worker's traceback."""
    task = get_task("flipflop")
    ens = Ensemble.init(16, G, 1, task.n_in, task.n_out)
    stream = BatchStream(task, ens, 4)
    stream.batch_size = 0  # every draw in the workers now raises
    prefetch = Prefetcher(stream, depth=2, workers=2)
    try:
        with pytest.raises(UserInputError, match="batch must be an integer >= 1"):
            prefetch.next()
    finally:
        prefetch.close()
    stream = BatchStream(task, ens, 4)
    object.__setattr__(task, "draw", lambda batch, rng: 1 / 0)  # the workers are forked with it
    prefetch = Prefetcher(stream, depth=2, workers=2)
    try:
        with pytest.raises(RuntimeError, match="(?s)failed in a worker process.*ZeroDivisionError"):
            prefetch.next()
    finally:
        prefetch.close()


@pytest.mark.parametrize("option, value", [("workers", 0), ("depth", 0), ("workers", 1.5)])
def test_bad_prefetch_options_are_one_line_errors(option, value):
    _, _, stream = _stream()
    with pytest.raises(ValueError, match=f"^{option} must be an integer >= 1, got {value}$"):
        Prefetcher(stream, **{option: value})


def test_fixed_batches_are_not_prefetched():
    task = get_task("simple")
    ens = Ensemble.init(16, G, 1, task.n_in, task.n_out, nonlinearity="linear")
    with pytest.raises(ValueError, match="fixed batch"):
        Prefetcher(BatchStream(task, ens, 1))


def test_a_mask_that_scores_nothing_is_refused_before_training():
    """An all-zero mask trains nothing: refused with one line, for a given batch and for a task."""
    task = get_task("flipflop", T=10.0, t_fix=1.0)
    ens = Ensemble.init(n=8, g=[0.5], seeds=1, n_in=task.n_in, n_out=task.n_out)
    batch = task.sample(4, 0)
    empty = Batch(batch.inputs, batch.targets, np.zeros_like(batch.mask), batch.meta, batch.dt)
    with pytest.raises(ValueError, match="the mask is zero everywhere in the given batch"):
        BatchStream(task, ens, 4, empty)
    never = get_task("flipflop", T=6.0, t_fix=1.0, t_stim=1.0, t_delay=5.0, t_sd_min=5.0, t_sd_max=5.0)
    assert not never.sample(16, 0).mask.any()  # the premise: the decision window starts after T
    with pytest.raises(ValueError, match="the mask is zero everywhere in 16 trials of task 'flipflop'"):
        BatchStream(never, ens, 4)
    BatchStream(task, ens, 4, batch)  # a scored batch is fine
