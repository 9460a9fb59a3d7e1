"""``randstruct sentiment snapshot``: the last checkpoint of an unfinished run as a complete run.

A long run (500 epochs) is analysed while it trains or after it was stopped: the checkpoint's
network, initial blocks and history become the results of a new run directory whose config
records ``epochs`` = the checkpoint's epoch and ``snapshot_of`` = the source run and epoch. The
corpus is rebuilt from the files named in the source's config.json and must give the same
statistics; the source run is only read, so it can still be resumed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from randstruct import store
from randstruct.runs.lifecycle import finish_run, start_run
from randstruct.paper.sentiment import sources as S
from randstruct.paper.sentiment.train import KIND, SentimentConfig, Trainer, prepare_corpus, results_dataset


def data_source(data: dict) -> Path | S.Snippets:
    """The training data named by a run's ``spec["data"]`` (SST folder or snippet file)."""
    if "snippets" in data:
        return S.Snippets(data["snippets"]["path"], data["snippets"]["split_seed"])
    return Path(data["train"]["path"]).parent


def snapshot(run_dir: str | Path, out: str | Path, overwrite: bool = False) -> Path:
    """Write the run directory ``out`` from ``run_dir``'s checkpoint; returns ``out``."""
    run_dir, out = Path(run_dir), Path(out)

    def sentiment_only(config: dict) -> None:
        if config.get("kind") != KIND:
            raise store.RunError(f"{run_dir} is not a sentiment run (its config.json has kind "
                                 f"{config.get('kind', 'none')!r})")

    spec = store.read_config(run_dir, expect=sentiment_only)["spec"]
    state = store.load_checkpoint(run_dir)
    if state is None:
        raise store.RunError(f"{run_dir} has no checkpoint to snapshot (not started, or complete: "
                             f"analyse it directly)")
    config = dataclasses.replace(SentimentConfig(**spec["config"]), epochs=int(state["epoch"]), device="cpu")
    corpus = prepare_corpus(data_source(spec["data"]), spec["data"]["glove"]["path"], config.seed,
                            config.lowercase)
    if corpus.stats != spec["stats"]:
        raise store.RunError(f"the data files named in {run_dir / store.CONFIG} no longer give the run's "
                             f"corpus (statistics differ); they changed since training")
    trainer = Trainer(corpus, config)
    trainer.load_state_dict(state)
    new_spec = {**spec, "config": config.to_dict(),
                "snapshot_of": {"run": str(run_dir.resolve()), "epoch": trainer.epoch,
                                "epochs_planned": spec["config"]["epochs"]}}
    with store.run_lock(out, "snapshot"):
        start_run(out, KIND, new_spec, overwrite, resume=False)
        (out / "vocab.txt").write_text("\n".join(corpus.vocab.itos) + "\n", encoding="utf-8")
        finish_run(out, results_dataset(trainer))
    return out
