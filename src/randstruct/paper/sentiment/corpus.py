"""A synthetic sentiment corpus written in the real SST and GloVe file formats.

Sentences come from a small grammar: a subject, a verb, optional negation ("not", "n't",
"never") and intensifier, a positive or negative adjective, optional neutral fillers, and an
optional "but" clause whose sentiment overrides the first one. Labels follow the SST scale (0-4:
strong/weak negative, neutral, weak/strong positive); a few neutral sentences (label 2) exercise
the binary filter. Sentence-initial words are sometimes capitalised, so, as with the real data
and the uncased GloVe 6B, they get random vectors. The word vectors carry a sentiment direction,
a negation direction and noise; a few corpus words are left out of the vector file and a few
vector-file words never occur in the corpus.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from randstruct.errors import UserInputError

SUBJECTS = (("the", "movie"), ("this", "film"), ("the", "plot"), ("the", "acting"), ("the", "script"),
            ("the", "cast"), ("the", "soundtrack"), ("the", "ending"), ("it",), ("the", "story"))
VERBS = ("is", "was", "seems", "felt")
INTENSIFIERS = ("very", "really", "truly", "quite")
_STRONG_POS = ("great", "wonderful", "brilliant", "superb", "masterful", "stunning", "terrific", "magnificent",
               "exhilarating", "gorgeous", "riveting", "extraordinary", "marvelous", "sublime", "dazzling")
_WEAK_POS = ("good", "fine", "funny", "charming", "clever", "moving", "likable", "pleasant", "solid", "smart",
             "engaging", "sweet", "witty", "warm", "lively", "decent", "enjoyable", "touching", "fresh", "honest")
_STRONG_NEG = ("awful", "terrible", "dreadful", "painful", "horrible", "atrocious", "unbearable", "wretched",
               "abysmal", "appalling", "insufferable", "excruciating", "laughable", "pathetic", "hideous")
_WEAK_NEG = ("bad", "dull", "boring", "bland", "clumsy", "tedious", "flat", "silly", "weak", "messy", "slow",
             "predictable", "shallow", "forgettable", "uneven", "tired", "stale", "awkward", "hollow", "thin")
POSITIVE = {**{w: 4 for w in _STRONG_POS}, **{w: 3 for w in _WEAK_POS}}
NEGATIVE = {**{w: 0 for w in _STRONG_NEG}, **{w: 1 for w in _WEAK_NEG}}
FILLERS = (("overall", ","), ("in", "the", "end", ","), ("to", "be", "honest", ","), ("for", "me", ","),
           ("at", "times", ","))
TAILS = (("for", "a", "sequel"), ("at", "times"), ("in", "places"), ("from", "start", "to", "finish"))
NEUTRAL = (("the", "movie", "is", "about", "a", "family", "."), ("it", "runs", "two", "hours", "."),
           ("the", "film", "was", "shot", "in", "paris", "."), ("the", "story", "follows", "a", "teacher", "."))
NEGATORS = ("not", "n't", "never")
NOT_IN_VECTORS = ("clumsy", "superb", "soundtrack")  # corpus words that get random vectors
EXTRA_VECTORS = ("cinema", "actor", "excellent", "poor")  # vector-file words absent from the corpus


@dataclass(frozen=True)
class Tree:
    """A labelled binary tree; leaves have a word and no children."""

    label: int
    word: str | None = None
    left: "Tree | None" = None
    right: "Tree | None" = None

    def ptb(self) -> str:
        if self.word is not None:
            return f"({self.label} {self.word})"
        return f"({self.label} {self.left.ptb()} {self.right.ptb()})"


def _phrase(words: list[str], labels: list[int], root: int) -> Tree:
    """Right-branching tree; a span is neutral (2) unless it holds a sentiment word."""
    if len(words) == 1:
        return Tree(labels[0], words[0])
    rest = _phrase(words[1:], labels[1:], root if any(x != 2 for x in labels[1:]) else 2)
    return Tree(root, left=Tree(labels[0], words[0]), right=rest)


def _clause(rng: np.random.Generator) -> tuple[list[str], list[int], int]:
    """Words, leaf labels and the 0-4 label of one opinion clause."""
    words = list(SUBJECTS[rng.integers(len(SUBJECTS))])
    verb = VERBS[rng.integers(len(VERBS))]
    negated = rng.random() < 0.5
    if negated:
        negator = NEGATORS[rng.integers(len(NEGATORS))]
        words += [verb, "not"] if negator == "not" else ([verb, "n't"] if negator == "n't" else ["never", verb])
    else:
        words.append(verb)
    intensified = rng.random() < 0.35
    if intensified:
        words.append(INTENSIFIERS[rng.integers(len(INTENSIFIERS))])
    lexicon = POSITIVE if rng.random() < 0.5 else NEGATIVE
    adjective = list(lexicon)[rng.integers(len(lexicon))]
    words.append(adjective)
    label = lexicon[adjective]
    if intensified:
        label = 4 if label >= 3 else 0
    if negated:
        label = 4 - label if label in (1, 3) else (1 if label == 4 else 3)
    if rng.random() < 0.25:
        words += list(TAILS[rng.integers(len(TAILS))])
    labels = [lexicon[w] if w == adjective else 2 for w in words]
    return words, labels, label


def sentence(rng: np.random.Generator, label_noise: float = 0.0, p_neutral: float = 0.08) -> Tree:
    """One PTB tree of the grammar; ``label_noise`` mirrors the root label (annotator noise)."""
    if rng.random() < p_neutral:
        words = list(NEUTRAL[rng.integers(len(NEUTRAL))])
        labels, label = [2] * len(words), 2
    else:
        words, labels, label = [], [], None
        if rng.random() < 0.3:
            filler = list(FILLERS[rng.integers(len(FILLERS))])
            words, labels = filler, [2] * len(filler)
        first, first_labels, label = _clause(rng)
        words, labels = words + first, labels + first_labels
        if rng.random() < 0.3:
            second, second_labels, label = _clause(rng)
            words, labels = words + ["but"] + second, labels + [2] + second_labels
        words, labels = words + ["."], labels + [2]
    if rng.random() < 0.5:
        words[0] = words[0].capitalize()
    if rng.random() < label_noise:
        label = 4 - label
    return _phrase(words, labels, label)


def word_vectors(words: list[str], dim: int, rng: np.random.Generator, signal: float = 1.0) -> dict[str, np.ndarray]:
    """Vectors with a sentiment axis (sign and strength), a negation axis and isotropic noise."""
    vectors = {}
    for word in words:
        v = rng.normal(0.0, 0.4, dim)
        v[0] += signal * {4: 2.0, 3: 1.0, 1: -1.0, 0: -2.0}.get(POSITIVE.get(word, NEGATIVE.get(word, 2)), 0.0)
        if word in NEGATORS:
            v[1] += 2.0 * signal
        if word in INTENSIFIERS:
            v[2] += 2.0 * signal
        if word == "but":
            v[3] += 2.0 * signal
        vectors[word] = v.astype(np.float32)
    return vectors


def write_corpus(out_dir: str | Path, n_train: int = 3000, n_dev: int = 500, n_test: int = 500,
                 dim: int = 50, label_noise: float = 0.0, signal: float = 1.0, seed: int = 0) -> tuple[Path, Path]:
    """Write ``trees/{train,dev,test}.txt`` and ``glove.synthetic.{dim}d.txt`` under ``out_dir``.

    Returns (the SST directory, the vector file).
    """
    if dim < 4:
        raise UserInputError(f"the synthetic vectors need dim >= 4, got {dim}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 7001]))
    out_dir = Path(out_dir)
    trees_dir = out_dir / "trees"
    trees_dir.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    for split, count in (("train", n_train), ("dev", n_dev), ("test", n_test)):
        lines = []
        for _ in range(count):
            tree = sentence(rng, label_noise)
            lines.append(tree.ptb())
        (trees_dir / f"{split}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        seen.update(w.lower() for line in lines for w in _leaves(line))
    words = sorted((seen - set(NOT_IN_VECTORS)) | set(EXTRA_VECTORS))
    vectors = word_vectors(words, dim, rng, signal)
    glove = out_dir / f"glove.synthetic.{dim}d.txt"
    with glove.open("w", encoding="utf-8") as f:
        for word in words:
            f.write(word + " " + " ".join(f"{x:.5f}" for x in vectors[word]) + "\n")
    return trees_dir, glove


def _leaves(line: str) -> list[str]:
    return [part.rstrip(")") for part in line.split() if not part.startswith("(")]
