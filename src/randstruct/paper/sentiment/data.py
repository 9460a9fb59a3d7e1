"""Readers for the published SST and GloVe files, the vocabulary, and length-bucketed batches.

Rebuilds by hand what the reference took from the removed torchtext-legacy API (SPEC 8.1, 13):
sentence-level PTB trees -> binary labels, a training-split vocabulary, GloVe rows with seeded
N(0, 1) vectors for words GloVe lacks, and torchtext's bucketing of batches.

Case is kept by default, as in the reference: GloVe 6B is uncased, so capitalised tokens get
random vectors (SPEC 10.18); ``lowercase=True`` folds case instead (a documented deviation).
Tokens are the tree leaves in order. The reference re-tokenised the joined leaves with spaCy,
which additionally splits a few leaves (e.g. hyphenated compounds); spaCy is not a dependency
here, so that extra split is a documented deviation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from randstruct.errors import UserInputError

UNK, PAD = "<unk>", "<pad>"
SST_SOURCE = ("trainDevTestTrees_PTB.zip from the Stanford Sentiment Treebank page "
              "(nlp.stanford.edu/sentiment)")
GLOVE_SOURCE = "glove.6B.zip from the Stanford GloVe page (nlp.stanford.edu/projects/glove)"
SST_FORMAT = "one PTB tree per line with labels 0-4, e.g. '(3 (2 It) (4 (4 works) (2 .)))'"
GLOVE_FORMAT = "GloVe text vectors, one 'word x1 x2 ... xd' line per word"
SPLITS = {"train": "train.txt", "dev": "dev.txt", "test": "test.txt"}

_TOKEN = re.compile(r"\(|\)|[^\s()]+")


class DataError(UserInputError):
    """A data file that is missing or does not have the published format."""


@dataclass(frozen=True)
class Sentence:
    tokens: tuple[str, ...]
    label: int  # root label: 0-4 as read, 0/1 after ``binarize``


def parse_tree(line: str) -> Sentence:
    """Root label and leaves of one PTB tree such as ``(3 (2 It) (4 (2 's) (4 good)))``."""
    parts = _TOKEN.findall(line)
    if len(parts) < 4 or parts[0] != "(":
        raise UserInputError("not a tree: a line must start with '(' and contain at least one leaf")
    leaves: list[str] = []
    depth, pos, root = 0, 0, None
    while pos < len(parts):
        part = parts[pos]
        if part == "(":
            if depth == 0 and root is not None:
                raise UserInputError("more than one tree on the line")
            if pos + 1 >= len(parts) or parts[pos + 1] in ("(", ")"):
                raise UserInputError("'(' must be followed by a label")
            label = parts[pos + 1]
            if label not in ("0", "1", "2", "3", "4"):
                raise UserInputError(f"label {label!r} is not one of 0-4")
            if root is None:
                root = int(label)
            depth += 1
            pos += 2
            if pos < len(parts) and parts[pos] not in ("(", ")"):
                leaves.append(parts[pos])
                if pos + 1 >= len(parts) or parts[pos + 1] != ")":
                    raise UserInputError(f"leaf {parts[pos]!r} must be followed by ')'")
                pos += 1
        elif part == ")":
            depth -= 1
            if depth < 0:
                raise UserInputError("unbalanced ')'")
            pos += 1
        else:
            raise UserInputError(f"word {part!r} outside a leaf '(label word)'")
    if depth != 0:
        raise UserInputError("unbalanced '(': the tree is not closed")
    if not leaves:
        raise UserInputError("the tree has no leaves")
    return Sentence(tuple(leaves), int(root))


def read_trees(path: str | Path) -> list[Sentence]:
    """All trees of one split file, with fine-grained root labels 0-4."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"SST tree file {path} not found: expected {SST_FORMAT} "
                        f"(train.txt, dev.txt, test.txt of {SST_SOURCE})")
    sentences = []
    try:
        with path.open(encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    sentences.append(parse_tree(line))
                except ValueError as err:
                    raise DataError(f"{path}:{number}: {err}; expected {SST_FORMAT} ({SST_SOURCE})") from None
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text; expected {SST_FORMAT} ({SST_SOURCE})") from None
    if not sentences:
        raise DataError(f"{path} holds no trees; expected {SST_FORMAT} ({SST_SOURCE})")
    return sentences


def binarize(sentences: Iterable[Sentence]) -> list[Sentence]:
    """SST-2 labels: drop neutral roots (2), positive = root label >= 3 (SPEC 8.1)."""
    return [Sentence(s.tokens, int(s.label >= 3)) for s in sentences if s.label != 2]


def find_split(sst_dir: str | Path, split: str) -> Path:
    """The file of ``split`` in ``sst_dir`` or in its ``trees/`` folder (the zip's layout)."""
    sst_dir = Path(sst_dir)
    if not sst_dir.is_dir():
        raise DataError(f"SST directory {sst_dir} not found: expected a folder with train.txt and dev.txt, "
                        f"{SST_FORMAT} ({SST_SOURCE})")
    name = SPLITS[split]
    for candidate in (sst_dir / name, sst_dir / "trees" / name):
        if candidate.is_file():
            return candidate
    raise DataError(f"SST tree file {sst_dir / name} not found: expected {SST_FORMAT} "
                    f"(train.txt, dev.txt, test.txt of {SST_SOURCE})")


def load_sst(sst_dir: str | Path, splits: tuple[str, ...] = ("train", "dev"),
             lowercase: bool = False) -> dict[str, list[Sentence]]:
    """Binary sentence-level splits; ``lowercase`` folds case (a deviation, SPEC 10.18)."""
    out = {}
    for split in splits:
        sentences = binarize(read_trees(find_split(sst_dir, split)))
        if not sentences:
            raise DataError(f"{find_split(sst_dir, split)} holds only neutral (label 2) trees")
        if lowercase:
            sentences = [Sentence(tuple(t.lower() for t in s.tokens), s.label) for s in sentences]
        out[split] = sentences
    return out


@dataclass(frozen=True)
class Vocab:
    """Index 0 ``<unk>``, 1 ``<pad>``, then training tokens by falling count, ties alphabetical."""

    itos: tuple[str, ...]

    @classmethod
    def build(cls, sentences: Iterable[Sentence]) -> "Vocab":
        counts: dict[str, int] = {}
        for s in sentences:
            for t in s.tokens:
                counts[t] = counts.get(t, 0) + 1
        words = sorted((w for w in counts if w not in (UNK, PAD)), key=lambda w: (-counts[w], w))
        return cls((UNK, PAD, *words))

    def __post_init__(self) -> None:
        object.__setattr__(self, "_stoi", {w: i for i, w in enumerate(self.itos)})

    def __len__(self) -> int:
        return len(self.itos)

    @property
    def stoi(self) -> dict[str, int]:
        return self._stoi  # type: ignore[attr-defined]

    @property
    def pad_index(self) -> int:
        return 1

    def encode(self, tokens: Iterable[str]) -> np.ndarray:
        stoi = self.stoi
        return np.array([stoi.get(t, 0) for t in tokens], dtype=np.int64)


def read_glove(path: str | Path, words: Iterable[str] | None = None) -> tuple[dict[str, np.ndarray], int]:
    """Vectors of ``words`` (all if None) from a GloVe text file, and its dimension.

    Every line is checked for the dimension of the first one; a word2vec-style header line
    ``count dim`` is accepted and skipped.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"GloVe file {path} not found: expected {GLOVE_FORMAT}, "
                        f"e.g. glove.6B.100d.txt of {GLOVE_SOURCE}")
    wanted = None if words is None else set(words)
    vectors: dict[str, np.ndarray] = {}
    dim = None
    try:
        with path.open(encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                line = line.rstrip()
                if not line:
                    continue
                n_fields = line.count(" ") + 1
                if dim is None:
                    fields = line.split(" ")
                    if number == 1 and n_fields == 2 and all(x.isdigit() for x in fields):
                        continue
                    dim = n_fields - 1
                    if dim < 1:
                        raise DataError(f"{path}:{number}: a word without numbers; expected {GLOVE_FORMAT} "
                                        f"({GLOVE_SOURCE})")
                if n_fields != dim + 1:
                    raise DataError(f"{path}:{number}: {n_fields - 1} numbers after the word, but the first "
                                    f"vector has {dim}; expected {GLOVE_FORMAT} ({GLOVE_SOURCE})")
                word, _, rest = line.partition(" ")
                if wanted is not None and word not in wanted:
                    continue
                try:
                    vectors[word] = np.array(rest.split(" "), dtype=np.float32)
                except ValueError:
                    raise DataError(f"{path}:{number}: non-numeric vector entry for {word!r}; expected "
                                    f"{GLOVE_FORMAT} ({GLOVE_SOURCE})") from None
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text; expected {GLOVE_FORMAT} ({GLOVE_SOURCE})") from None
    if dim is None:
        raise DataError(f"GloVe file {path} is empty; expected {GLOVE_FORMAT} ({GLOVE_SOURCE})")
    return vectors, dim


def embedding_matrix(vocab: Vocab, glove: dict[str, np.ndarray], dim: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """GloVe rows; N(0, 1) rows (drawn in vocabulary order) for the rest; zero ``<unk>``/``<pad>``.

    Returns the matrix and the number of vocabulary words that GloVe lacks (SPEC 8.1, 10.18).
    """
    matrix = np.empty((len(vocab), dim), dtype=np.float32)
    missing = 0
    for i, word in enumerate(vocab.itos):
        if word in glove:
            matrix[i] = glove[word]
        else:
            matrix[i] = rng.standard_normal(dim)
            missing += word not in (UNK, PAD)
    matrix[0] = 0.0
    matrix[vocab.pad_index] = 0.0
    return matrix, missing


@dataclass(frozen=True)
class Encoded:
    """A split as index arrays: ``tokens[offsets[i]:offsets[i] + lengths[i]]`` is sentence i."""

    tokens: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray

    @classmethod
    def from_sentences(cls, sentences: list[Sentence], vocab: Vocab) -> "Encoded":
        ids = [vocab.encode(s.tokens) for s in sentences]
        return cls(np.concatenate(ids), np.array([len(x) for x in ids], dtype=np.int64),
                   np.array([s.label for s in sentences], dtype=np.float32))

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.lengths)[:-1]])

    def __len__(self) -> int:
        return len(self.lengths)

    def collate(self, index: np.ndarray, pad: int, device: str | torch.device = "cpu"
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Padded (batch, time) indices, lengths (CPU, as packing wants) and labels of ``index``.

        ``index`` must be sorted by falling length (``pack_padded_sequence`` with enforce_sorted).
        """
        lengths = self.lengths[index]
        offsets = self.offsets[index]
        steps = np.arange(lengths.max())
        valid = steps[None, :] < lengths[:, None]
        gather = np.where(valid, offsets[:, None] + steps[None, :], 0)
        ids = np.where(valid, self.tokens[gather], pad)
        return (torch.from_numpy(ids).to(device), torch.from_numpy(lengths),
                torch.from_numpy(self.labels[index]).to(device))


def _sort_by_length(index: np.ndarray, lengths: np.ndarray, descending: bool) -> np.ndarray:
    order = np.argsort(lengths[index], kind="stable")
    sorted_index = index[order]
    return sorted_index[::-1].copy() if descending else sorted_index


def training_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator,
                     pool: int = 100) -> list[np.ndarray]:
    """torchtext's BucketIterator for training: shuffle, sort pools of ``pool`` batches by
    length, cut into batches, shuffle the batch order within each pool; each batch by falling length.
    """
    perm = rng.permutation(len(lengths))
    batches: list[np.ndarray] = []
    step = batch_size * pool
    for start in range(0, len(perm), step):
        chunk = _sort_by_length(perm[start:start + step], lengths, descending=False)
        pool_batches = [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
        for j in rng.permutation(len(pool_batches)):
            batches.append(_sort_by_length(pool_batches[j], lengths, descending=True))
    return batches


def evaluation_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """torchtext's evaluation order: whole split sorted by length, consecutive batches."""
    order = _sort_by_length(np.arange(len(lengths)), lengths, descending=False)
    return [_sort_by_length(order[i:i + batch_size], lengths, descending=True)
            for i in range(0, len(order), batch_size)]
