"""One progress bar over every shard of a command: epochs done / total and networks per second
over the whole cluster.

Workers report through the scheduler's event log (``Worker.log_event`` on a topic private to the
command, ``Client.subscribe_topic`` at the client), at most once per ``EVERY`` seconds per shard;
a shard's last report is its finished result.
"""

from __future__ import annotations

import threading
import time

EVERY = 1.0


class Reporter:
    """Worker side: an ``on_epoch`` callback for the trainer of one shard."""

    def __init__(self, topic: str, key: str):
        from distributed import get_worker

        self.worker, self.topic, self.key = get_worker(), topic, key
        self.last = 0.0

    def start(self, epoch: int) -> None:
        self.worker.log_event(self.topic, {"key": self.key, "epoch": int(epoch), "start": True})

    def __call__(self, trainer) -> None:
        now = time.monotonic()
        if now - self.last >= EVERY:
            self.last = now
            self.worker.log_event(self.topic, {"key": self.key, "epoch": int(trainer.epoch)})


class ClusterBar:
    """Client side: a tqdm bar over ``shards`` ({key: (epochs, networks)}), fed by worker events."""

    def __init__(self, client, topic: str, shards: dict[str, tuple[int, int]], done: dict[str, int],
                 desc: str, enabled: bool = True):
        from tqdm.auto import tqdm

        self.client, self.topic, self.shards = client, topic, shards
        self.epoch = {k: done.get(k, 0) for k in shards}
        self.lock = threading.Lock()
        self.bar = tqdm(total=sum(e for e, _ in shards.values()), initial=sum(self.epoch.values()), unit="epoch",
                        desc=desc, dynamic_ncols=True, disable=not enabled)
        self.start, self.net_epochs = time.perf_counter(), 0
        self.trained = {k: 0 for k in shards}  # network-epochs each shard trained in this command
        self.recomputed = 0  # epochs reported done, then lost with a worker and trained again
        self.finished = sum(done.get(k, 0) >= e for k, (e, _) in shards.items())
        if enabled:
            client.subscribe_topic(topic, self._event)
        self.enabled = enabled

    def _event(self, event) -> None:
        msg = event[1] if isinstance(event, tuple) else event
        if msg.get("start"):
            self.resumed(msg["key"], msg["epoch"])
        else:
            self.advance(msg["key"], msg["epoch"])

    def advance(self, key: str, epoch: int, finished: bool = False) -> None:
        with self.lock:
            if key not in self.epoch:
                return
            step = epoch - self.epoch[key]
            if step <= 0 and not finished:
                return
            if step > 0:
                self.epoch[key] = epoch
                self.net_epochs += step * self.shards[key][1]
                self.trained[key] += step * self.shards[key][1]
                self.bar.update(step)
            self.finished += finished
            rate = self.net_epochs / max(time.perf_counter() - self.start, 1e-9)
            self.bar.set_postfix_str(f"{self.finished}/{len(self.shards)} shards | {rate:,.0f} net-ep/s", refresh=False)

    def resumed(self, key: str, epoch: int) -> None:
        """A shard (re)started from a checkpoint at ``epoch``: its bar goes back (a lost worker) or,
        on its first start in this command, forward to the epochs trained before it (not counted
        as trained now)."""
        with self.lock:
            if key in self.epoch and epoch != self.epoch[key]:
                if epoch < self.epoch[key]:
                    self.recomputed += self.epoch[key] - epoch
                self.bar.update(epoch - self.epoch[key])
                self.epoch[key] = epoch

    def close(self) -> None:
        if self.enabled:
            try:
                self.client.unsubscribe_topic(self.topic)
            except Exception:  # the connection may already be gone
                pass
        self.bar.close()
