"""An epoch's two device stages captured once as CUDA graphs and replayed.

One launch per stage instead of about a thousand kernel launches per epoch. The stages write
everything in place (parameters, moments, history, divergence marks) and never wait for the host,
which is what makes them capturable; the dW snapshot between them runs outside the graphs.
"""

from __future__ import annotations

import warnings

import torch


class EpochGraphs:
    """Replays ``trainer``'s forward and backward stages; falls back to eager launches for good if
    this setup cannot capture them."""

    def __init__(self, trainer):
        self.trainer = trainer
        self.device = trainer.ensemble.device
        self.warm = False
        self.graphs = None
        self.stream = None
        self.buffers = None  # the intermediate tensors both graphs point at

    def _side_stream(self):
        if self.stream is None:
            self.stream = torch.cuda.Stream(self.device)
        self.stream.wait_stream(torch.cuda.current_stream(self.device))
        return self.stream

    def step(self, batch) -> None:
        trainer = self.trainer
        if not self.warm:
            # The first epoch runs eagerly on the stream that will capture: lazy library set-up
            # (cuBLAS workspaces, ...) must happen outside the capture.
            with torch.cuda.stream(self._side_stream()):
                trainer.eager_epoch(batch)
            torch.cuda.current_stream(self.device).wait_stream(self.stream)
            self.warm = True
            return
        if self.graphs is None:
            try:
                self.graphs = self._capture(batch)
            except RuntimeError as err:  # a library call that cannot be captured on this setup
                warnings.warn(f"CUDA graph capture failed ({err}); training continues without graphs",
                              RuntimeWarning, stacklevel=4)
                torch.cuda.synchronize(self.device)
                trainer.stop_graphs()
                trainer.eager_epoch(batch)
                return
        fwd, bwd, static = self.graphs
        for dst, src in zip(static, batch):
            if dst is not src:
                dst.copy_(src, non_blocking=True)
        trainer.recorder.epoch_t.fill_(trainer.epoch)
        fwd.replay()
        trainer.snapshot_if_due()
        bwd.replay()
        trainer.epoch += 1

    def _capture(self, batch):
        """Record both stages as CUDA graphs reading from static batch buffers."""
        static = tuple(torch.empty(t.shape, dtype=t.dtype, device=self.device) for t in batch)
        fwd, bwd = torch.cuda.CUDAGraph(), torch.cuda.CUDAGraph()
        stream = self._side_stream()
        with torch.cuda.graph(fwd, stream=stream, capture_error_mode="thread_local"):
            out = self.trainer.forward_stage(*static)
        with torch.cuda.graph(bwd, stream=stream, pool=fwd.pool(), capture_error_mode="thread_local"):
            self.trainer.backward_stage(*out)
        torch.cuda.current_stream(self.device).wait_stream(stream)
        self.buffers = out
        return fwd, bwd, static
