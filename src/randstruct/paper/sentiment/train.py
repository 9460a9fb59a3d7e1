"""Training the sentiment LSTM into a run directory (SPEC 8.1-8.2).

The run directory follows the project's layout (:mod:`randstruct.store`): ``config.json`` is
written first, ``checkpoint.pt`` every ``checkpoint_every`` epochs (``resume=True`` continues
exactly, because every epoch's batch order and dropout masks come from streams seeded by
(seed, epoch)), and ``results.zarr`` last. ``vocab.txt`` lists the vocabulary, one word a line,
in index order. Everything is validated and the data are read before the folder is touched.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import xarray as xr

from randstruct import store
from randstruct.runs.lifecycle import finish_run, start_run
from randstruct.engine.device import check_device
from randstruct.errors import UserInputError
from randstruct.paper.sentiment import data as D
from randstruct.paper.sentiment import sources as S
from randstruct.paper.sentiment.model import BLOCKS, SentimentLSTM

KIND = "sentiment"
STREAMS = {"oov": 0, "init": 1, "batches": 2, "dropout": 3}


def stream_seed(seed: int, stream: str, *extra: int) -> np.random.SeedSequence:
    """Independent random stream per purpose (and per epoch), derived from the run's seed."""
    return np.random.SeedSequence([int(seed), STREAMS[stream], *map(int, extra)])


def numpy_rng(seed: int, stream: str, *extra: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(stream_seed(seed, stream, *extra)))


def torch_generator(seed: int, stream: str, *extra: int, device: str | torch.device = "cpu") -> torch.Generator:
    gen = torch.Generator(device=device)
    gen.manual_seed(int(stream_seed(seed, stream, *extra).generate_state(1, np.uint64)[0]))
    return gen


@dataclass(frozen=True)
class SentimentConfig:
    """The training protocol; defaults are the paper's (SPEC 8.2, 11.9)."""

    n: int = 256
    epochs: int = 500
    batch_size: int = 64
    lr0: float = 0.01
    dropout: float = 0.5
    seed: int = 6080
    lowercase: bool = False
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name in ("n", "epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise UserInputError(f"{'N' if name == 'n' else name} must be an integer >= 1, got {value}")
        if not (np.isfinite(self.lr0) and self.lr0 > 0):
            raise UserInputError(f"lr0 must be a finite number > 0, got {self.lr0}")
        if not 0 <= self.dropout < 1:
            raise UserInputError(f"dropout must be in [0, 1), got {self.dropout}")
        if int(self.seed) != self.seed or self.seed < 0:
            raise UserInputError(f"seed must be an integer >= 0, got {self.seed}")
        check_device(self.device)

    @property
    def lr(self) -> float:
        """Adam learning rate lr0 / N (0.01 / 256 = 3.90625e-5 in the paper)."""
        return self.lr0 / self.n

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Corpus:
    """Encoded splits, vocabulary, the embedding matrix and the statistics the reference printed."""

    vocab: D.Vocab
    embedding: np.ndarray
    train: D.Encoded
    dev: D.Encoded
    stats: dict
    split: dict | None = None  # how a snippet file was split (None for the SST folder's own splits)


def prepare_corpus(data: str | Path | S.Snippets, glove_path: str | Path, seed: int,
                   lowercase: bool = False) -> Corpus:
    """Read the train/dev sentences (an SST tree folder or a :class:`~.sources.Snippets` file)
    and the GloVe rows of the training vocabulary (a text file or an .npy + parquet folder)."""
    if isinstance(data, S.Snippets):
        splits, split = S.load_snippets(data.path, data.split_seed, lowercase=lowercase)
    else:
        splits, split = D.load_sst(data, ("train", "dev"), lowercase=lowercase), None
    vocab = D.Vocab.build(splits["train"])
    glove, dim = S.read_vectors(glove_path, vocab.itos)
    embedding, oov = D.embedding_matrix(vocab, glove, dim, numpy_rng(seed, "oov"))
    train = D.Encoded.from_sentences(splits["train"], vocab)
    dev = D.Encoded.from_sentences(splits["dev"], vocab)
    stats = {
        "n_train": len(train), "n_dev": len(dev), "train_tokens": int(train.lengths.sum()),
        "mean_train_length": round(float(train.lengths.mean()), 3), "vocab_size": len(vocab),
        "embedding_dim": dim, "vocab_without_vector": oov,
        "train_positive": int(train.labels.sum()), "dev_positive": int(dev.labels.sum()),
    }
    return Corpus(vocab, embedding, train, dev, stats, split)


def build_model(corpus_embedding: np.ndarray, config: SentimentConfig) -> SentimentLSTM:
    model = SentimentLSTM(corpus_embedding, config.n, config.dropout,
                          seed_generator=torch_generator(config.seed, "init"))
    return model.to(config.device)


@torch.no_grad()
def per_sentence(model: SentimentLSTM, split: D.Encoded, pad: int, device: str | torch.device,
                 chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Loss and correctness of every sentence (eval mode), in a few large packed forwards."""
    model.eval()
    order = np.argsort(-split.lengths, kind="stable")
    losses = np.empty(len(split), dtype=np.float64)
    correct = np.empty(len(split), dtype=np.float64)
    for start in range(0, len(order), chunk):
        idx = order[start:start + chunk]
        ids, lengths, labels = split.collate(idx, pad, device)
        logits = model(ids, lengths)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels, reduction="none")
        losses[idx] = loss.double().cpu().numpy()
        correct[idx] = ((logits > 0).to(labels.dtype) == labels).double().cpu().numpy()
    return losses, correct


def batch_average(values: np.ndarray, batches: list[np.ndarray]) -> float:
    """Mean per batch, then over batches (the reference's accounting, SPEC 8.2)."""
    return float(np.mean([values[b].mean() for b in batches]))


def evaluate(model: SentimentLSTM, split: D.Encoded, batches: list[np.ndarray], pad: int,
             device: str | torch.device) -> tuple[float, float]:
    """Validation loss and accuracy, averaged over the evaluation batches."""
    losses, correct = per_sentence(model, split, pad, device)
    return batch_average(losses, batches), batch_average(correct, batches)


class Trainer:
    """One model, its optimizer and the per-epoch history; resumable at epoch boundaries."""

    def __init__(self, corpus: Corpus, config: SentimentConfig) -> None:
        self.corpus, self.config = corpus, config
        self.device = torch.device(config.device)
        self.model = build_model(corpus.embedding, config)
        self.initial = {k: v.cpu() for k, v in self.model.blocks().items()}
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(trainable, lr=config.lr)
        self.epoch = 0
        self.history: dict[str, list[float]] = {k: [] for k in ("train_loss", "train_acc", "val_loss", "val_acc")}
        self.wall_time = 0.0
        self.val_batches = D.evaluation_batches(corpus.dev.lengths, config.batch_size)

    def train_epoch(self, on_batch: Callable[[], None] | None = None) -> tuple[float, float]:
        """One pass over the training set in train mode; batch-averaged loss and accuracy."""
        cfg, model, pad = self.config, self.model, self.corpus.vocab.pad_index
        batches = D.training_batches(self.corpus.train.lengths, cfg.batch_size,
                                     numpy_rng(cfg.seed, "batches", self.epoch))
        dropout_gen = torch_generator(cfg.seed, "dropout", self.epoch, device=self.device)
        model.train()
        losses, accs = [], []
        for index in batches:
            ids, lengths, labels = self.corpus.train.collate(index, pad, self.device)
            logits = model(ids, lengths, dropout_gen)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            losses.append(loss.item())
            accs.append(((logits.detach() > 0).to(labels.dtype) == labels).float().mean().item())
            if on_batch is not None:
                on_batch()
        return float(np.mean(losses)), float(np.mean(accs))

    def run(self, progress: bool = False, checkpoint: Callable[["Trainer"], None] | None = None,
            every: int = 1) -> None:
        """Train the remaining epochs; ``checkpoint`` runs every ``every`` epochs."""
        bar = _Progress(self) if progress else None
        while self.epoch < self.config.epochs:
            start = time.perf_counter()
            train_loss, train_acc = self.train_epoch(bar.batch if bar else None)
            val_loss, val_acc = evaluate(self.model, self.corpus.dev, self.val_batches,
                                         self.corpus.vocab.pad_index, self.device)
            for key, value in zip(self.history, (train_loss, train_acc, val_loss, val_acc)):
                self.history[key].append(value)
            self.epoch += 1
            self.wall_time += time.perf_counter() - start
            if bar is not None:
                bar.epoch()
            if checkpoint is not None and self.epoch % every == 0 and self.epoch < self.config.epochs:
                checkpoint(self)
        if bar is not None:
            bar.close()

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "model": {k: v.cpu() for k, v in self.model.blocks().items()},
                "optimizer": self.optimizer.state_dict(), "history": self.history,
                "initial": self.initial, "wall_time": self.wall_time}

    def load_state_dict(self, state: dict) -> None:
        self.epoch = int(state["epoch"])
        self.model.set_blocks(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.history = {k: list(v) for k, v in state["history"].items()}
        self.initial = state["initial"]
        self.wall_time = float(state["wall_time"])


class _Progress:
    """Epoch bar with train/validation loss and accuracy, and a transient batch bar."""

    def __init__(self, trainer: Trainer) -> None:
        from tqdm.auto import tqdm

        self.tqdm, self.trainer = tqdm, trainer
        self.n_batches = -(-len(trainer.corpus.train) // trainer.config.batch_size)
        self.bar = tqdm(total=trainer.config.epochs, initial=trainer.epoch, unit="epoch",
                        dynamic_ncols=True, desc="sentiment")
        self.inner = None

    def batch(self) -> None:
        if self.inner is None:
            self.inner = self.tqdm(total=self.n_batches, unit="batch", leave=False, dynamic_ncols=True)
        self.inner.update()

    def epoch(self) -> None:
        if self.inner is not None:
            self.inner.close()
            self.inner = None
        h = self.trainer.history
        self.bar.set_postfix_str(f"train {h['train_loss'][-1]:.3f}/{h['train_acc'][-1]:.3f} "
                                 f"val {h['val_loss'][-1]:.3f}/{h['val_acc'][-1]:.3f} (loss/acc)")
        self.bar.update()

    def close(self) -> None:
        self.bar.close()


def _file_record(path: str | Path) -> dict:
    path = Path(path)
    files = S.npy_pair(path) if path.is_dir() or path.suffix == ".npy" else (path,)
    return {"path": str(path.resolve()), "bytes": sum(f.stat().st_size for f in files)}


def data_record(data: str | Path | S.Snippets, glove_path: str | Path, corpus: Corpus) -> dict:
    """What config.json records of the data: files, sizes and, for snippets, the split."""
    if isinstance(data, S.Snippets):
        record = {"snippets": corpus.split}
    else:
        record = {k: _file_record(D.find_split(data, k)) for k in ("train", "dev")}
    return {**record, "glove": _file_record(glove_path)}


def train(data: str | Path | S.Snippets, glove_path: str | Path, out: str | Path, config: SentimentConfig,
          overwrite: bool = False, resume: bool = False, progress: bool = True,
          checkpoint_every: int = 1) -> Path:
    """Train one model into the run directory ``out``; returns ``out``.

    ``data`` is an SST tree folder or a :class:`~.sources.Snippets` file; ``glove_path`` a GloVe
    text file or an .npy + parquet folder.
    """
    out = Path(out)
    if int(checkpoint_every) != checkpoint_every or checkpoint_every < 1:
        raise UserInputError(f"checkpoint_every must be an integer >= 1, got {checkpoint_every}")
    corpus = prepare_corpus(data, glove_path, config.seed, config.lowercase)
    spec = {"config": config.to_dict(), "data": data_record(data, glove_path, corpus), "stats": corpus.stats}
    with store.run_lock(out, "train"):
        checkpoint = start_run(out, KIND, spec, overwrite, resume)
        trainer = Trainer(corpus, config)
        if not resume:
            (out / "vocab.txt").write_text("\n".join(corpus.vocab.itos) + "\n", encoding="utf-8")
        if checkpoint is not None:
            trainer.load_state_dict(checkpoint)
        trainer.run(progress=progress, every=checkpoint_every,
                    checkpoint=lambda t: store.save_checkpoint(out, t.state_dict()))
        finish_run(out, results_dataset(trainer))
    return out


def results_dataset(trainer: Trainer) -> xr.Dataset:
    """Per-epoch curves, initial and final blocks, the embedding and the encoded validation set."""
    cfg, corpus = trainer.config, trainer.corpus
    final = {k: v.cpu().numpy() for k, v in trainer.model.blocks().items()}
    dims = {"w_ih_l0": ("row", "emb"), "w_hh_l0": ("row", "col"), "w_ih_l1": ("row", "col"),
            "w_hh_l1": ("row", "col"), "decoder_w": ("out", "col"), "decoder_b": ("out",)}
    variables = {}
    for name in BLOCKS:
        dim = dims.get(name, ("row",))
        for stage, values in (("initial", trainer.initial[name].numpy()), ("final", final[name])):
            variables[f"{stage}_{name}"] = xr.Variable(dim, values, attrs={
                "description": f"{stage} {name} (gates stacked i, f, g, o along row)"})
    curves = {"train_loss": "BCE of the training batches in train mode, averaged over batches",
              "train_acc": "accuracy of the training batches in train mode, averaged over batches",
              "val_loss": "validation BCE in eval mode, averaged over batches",
              "val_acc": "validation accuracy in eval mode, averaged over batches"}
    for key, text in curves.items():
        variables[key] = xr.Variable("epoch", np.asarray(trainer.history[key], np.float64),
                                     attrs={"description": text})
    dev = corpus.dev
    variables["embedding"] = xr.Variable(("word", "emb"), corpus.embedding,
                                         attrs={"description": "frozen embedding, rows in vocab.txt order"})
    variables["val_tokens"] = xr.Variable("val_token", dev.tokens.astype(np.int32),
                                          attrs={"description": "validation sentences, concatenated indices"})
    variables["val_lengths"] = xr.Variable("val_sentence", dev.lengths.astype(np.int32))
    variables["val_labels"] = xr.Variable("val_sentence", dev.labels.astype(np.int8))
    attrs = {"kind": KIND, "N": cfg.n, "emb_dim": int(corpus.embedding.shape[1]), "lr": cfg.lr,
             "epochs": cfg.epochs, "seed": cfg.seed, "batch_size": cfg.batch_size, "pad_index": 1,
             "train_wall_time_s": trainer.wall_time, **corpus.stats}
    ds = xr.Dataset(variables, attrs=attrs)
    return ds.assign_coords(epoch=np.arange(1, cfg.epochs + 1))
