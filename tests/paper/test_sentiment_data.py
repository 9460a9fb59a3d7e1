"""SST/GloVe readers, vocabulary, batching and the LSTM model (fast; no training)."""

import math
import re

import numpy as np
import pytest
import torch

from randstruct.paper.sentiment import corpus as C
from randstruct.paper.sentiment import data as D
from randstruct.paper.sentiment.model import SentimentLSTM, trainable_count
from randstruct.paper.sentiment.train import numpy_rng

SST_LINE = "(3 (2 It) (4 (4 (2 's) (4 (3 (2 a) (4 (3 lovely) (2 film))) (3 (2 with) (4 (3 (3 lovely) " \
           "(2 performances)) (2 (2 by) (2 (2 (2 Buy) (2 and)) (2 Accorsi))))))) (2 .)))"


def test_parse_tree_root_label_and_leaves_in_order():
    s = D.parse_tree(SST_LINE)
    assert s.label == 3
    assert s.tokens == ("It", "'s", "a", "lovely", "film", "with", "lovely", "performances", "by", "Buy",
                        "and", "Accorsi", ".")
    assert D.parse_tree("(0 (1 -LRB-) (0 awful))\n") == D.Sentence(("-LRB-", "awful"), 0)


@pytest.mark.parametrize("line, message", [
    ("It 's good", "must start with '('"),
    ("(3 (2 It) (4 good)", "not closed"),
    ("(3 (2 It)) (4 good))", "more than one tree"),
    ("(7 (2 It) (4 good))", "label '7' is not one of 0-4"),
    ("(3 (2 It) stray (4 good))", "outside a leaf"),
    ("(3 (2 It two) (4 good))", "must be followed by ')'"),
])
def test_parse_tree_rejects_malformed(line, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        D.parse_tree(line)


def test_read_trees_binarize_and_errors(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("(4 (2 A) (4 great))\n\n(2 (2 so) (2 so))\n(1 (2 A) (1 dull))\n(0 (0 awful))\n")
    fine = D.read_trees(path)
    assert [s.label for s in fine] == [4, 2, 1, 0]
    binary = D.binarize(fine)
    assert [(s.tokens, s.label) for s in binary] == [(("A", "great"), 1), (("A", "dull"), 0), (("awful",), 0)]
    path.write_text("(4 (2 A) (4 great))\n(4 (2 A) (4 great)\n")
    with pytest.raises(D.DataError, match=r"train.txt:2: unbalanced.*trainDevTestTrees_PTB.zip"):
        D.read_trees(path)
    path.write_text("(4 (2 A) (4 great))\n")
    with pytest.raises(D.DataError, match=r"dev.txt not found.*one PTB tree per line.*trainDevTestTrees_PTB.zip"):
        D.load_sst(tmp_path)
    with pytest.raises(D.DataError, match="SST directory .*nowhere not found"):
        D.load_sst(tmp_path / "nowhere")


def test_load_sst_finds_trees_folder_and_lowercases(tmp_path):
    trees = tmp_path / "trees"
    trees.mkdir()
    (trees / "train.txt").write_text("(4 (2 The) (4 great))\n(2 (2 meh))\n")
    (trees / "dev.txt").write_text("(0 (0 Awful))\n")
    splits = D.load_sst(tmp_path)
    assert [s.tokens for s in splits["train"]] == [("The", "great")]
    assert D.load_sst(tmp_path, lowercase=True)["dev"][0].tokens == ("awful",)


def test_read_glove_exact_and_errors(tmp_path):
    path = tmp_path / "vec.txt"
    path.write_text("the 0.5 -1.25 3\ngood 1e-2 0 -0\n")
    vectors, dim = D.read_glove(path)
    assert dim == 3
    np.testing.assert_array_equal(vectors["the"], np.array([0.5, -1.25, 3], np.float32))
    np.testing.assert_array_equal(vectors["good"], np.array([0.01, 0, 0], np.float32))
    assert set(D.read_glove(path, ["good", "absent"])[0]) == {"good"}
    path.write_text("2 3\nthe 0.5 -1.25 3\n")
    assert D.read_glove(path)[1] == 3
    path.write_text("the 0.5 -1.25 3\ngood 1 2\n")
    with pytest.raises(D.DataError, match=r"vec.txt:2: 2 numbers after the word, but the first vector has 3"):
        D.read_glove(path)
    path.write_text("the 0.5 x 3\n")
    with pytest.raises(D.DataError, match="non-numeric"):
        D.read_glove(path)
    with pytest.raises(D.DataError, match=r"GloVe file .*missing.txt not found.*glove.6B.zip"):
        D.read_glove(tmp_path / "missing.txt")


def test_vocab_order_and_embedding_rows():
    sents = [D.Sentence(("b", "a", "b", "The"), 1), D.Sentence(("a", "c", "b"), 0)]
    vocab = D.Vocab.build(sents)
    assert vocab.itos == ("<unk>", "<pad>", "b", "a", "The", "c")
    np.testing.assert_array_equal(vocab.encode(["a", "zzz", "c"]), [3, 0, 5])
    glove = {"a": np.ones(4, np.float32), "b": np.full(4, 2, np.float32), "<unk>": np.full(4, 9, np.float32)}
    emb, missing = D.embedding_matrix(vocab, glove, 4, numpy_rng(3, "oov"))
    assert missing == 2  # "The" and "c": case-sensitive vocabulary, uncased vectors (SPEC 10.18)
    np.testing.assert_array_equal(emb[0], 0)
    np.testing.assert_array_equal(emb[1], 0)
    np.testing.assert_array_equal(emb[3], 1)
    again, _ = D.embedding_matrix(vocab, glove, 4, numpy_rng(3, "oov"))
    np.testing.assert_array_equal(emb, again)
    assert not np.allclose(emb[4], emb[5])


def test_bucketed_batches_match_torchtext_counts_and_are_sorted():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 50, 6920)
    batches = D.training_batches(lengths, 64, numpy_rng(1, "batches", 0))
    assert len(batches) == 109  # SPEC 8.1
    assert sorted(np.concatenate(batches).tolist()) == list(range(6920))
    assert all(np.all(np.diff(lengths[b]) <= 0) for b in batches)
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < 3  # pools of 100 batches sorted by length: batches hold similar lengths
    other = D.training_batches(lengths, 64, numpy_rng(1, "batches", 1))
    assert not all(np.array_equal(a, b) for a, b in zip(batches, other))
    again = D.training_batches(lengths, 64, numpy_rng(1, "batches", 0))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))
    val = D.evaluation_batches(rng.integers(1, 50, 872), 64)
    assert len(val) == 14 and sum(len(b) for b in val) == 872


def test_collate_pads_and_keeps_labels():
    enc = D.Encoded(np.array([5, 6, 7, 8, 9, 10]), np.array([2, 3, 1]), np.array([1, 0, 1], np.float32))
    ids, lengths, labels = enc.collate(np.array([1, 0, 2]), pad=1)
    assert ids.tolist() == [[7, 8, 9], [5, 6, 1], [10, 1, 1]]
    assert lengths.tolist() == [3, 2, 1] and labels.tolist() == [0, 1, 1]


def test_trainable_parameter_count_of_the_paper_configuration():
    assert trainable_count(256, 100) == 893_185  # SPEC 8.2
    model = SentimentLSTM(np.zeros((50, 100), np.float32), 256)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 893_185
    assert not model.embedding.weight.requires_grad


def test_init_bounds_and_seeding():
    gen = torch.Generator().manual_seed(0)
    model = SentimentLSTM(np.zeros((5, 100), np.float32), 64, seed_generator=gen)
    w_in = model.block("w_ih_l0")
    assert w_in.abs().max() <= 0.1 and w_in.abs().max() > 0.099
    for name in ("w_hh_l0", "w_ih_l1", "w_hh_l1", "b_ih_l0", "decoder_w", "decoder_b"):
        assert model.block(name).abs().max() <= 1 / math.sqrt(64)
    same = SentimentLSTM(np.zeros((5, 100), np.float32), 64, seed_generator=torch.Generator().manual_seed(0))
    assert torch.equal(same.block("w_hh_l1"), model.block("w_hh_l1"))


def test_stacked_layers_equal_a_two_layer_lstm_and_packing_ignores_padding():
    torch.manual_seed(0)
    emb = np.random.default_rng(0).normal(size=(12, 6)).astype(np.float32)
    model = SentimentLSTM(emb, 5, seed_generator=torch.Generator().manual_seed(1)).eval()
    ref = torch.nn.LSTM(6, 5, num_layers=2, batch_first=True)
    with torch.no_grad():
        for layer in (0, 1):
            for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                short = {"weight_ih": "w_ih", "weight_hh": "w_hh", "bias_ih": "b_ih", "bias_hh": "b_hh"}[kind]
                getattr(ref, f"{kind}_l{layer}").copy_(model.block(f"{short}_l{layer}"))
    ids = torch.tensor([[2, 3, 4, 5], [6, 7, 8, 1], [9, 10, 1, 1]])
    lengths = torch.tensor([4, 3, 2])
    logits = model(ids, lengths)
    for i in range(3):
        _, (h, _) = ref(model.embedding(ids[i:i + 1, :lengths[i]]))
        expected = model.decoder(h[-1]).squeeze()
        torch.testing.assert_close(logits[i], expected, rtol=1e-5, atol=1e-6)


def test_dropout_masks_come_from_the_generator():
    emb = np.random.default_rng(0).normal(size=(12, 6)).astype(np.float32)
    model = SentimentLSTM(emb, 5, seed_generator=torch.Generator().manual_seed(1)).train()
    ids, lengths = torch.tensor([[2, 3, 4], [5, 6, 1]]), torch.tensor([3, 2])
    a = model(ids, lengths, torch.Generator().manual_seed(5))
    b = model(ids, lengths, torch.Generator().manual_seed(5))
    c = model(ids, lengths, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_synthetic_corpus_is_in_the_real_formats(tmp_path):
    sst, glove = C.write_corpus(tmp_path, n_train=300, n_dev=60, n_test=60, dim=8, seed=3)
    fine = D.read_trees(sst / "train.txt")
    assert len(fine) == 300 and {s.label for s in fine} == {0, 1, 2, 3, 4}
    vectors, dim = D.read_glove(glove)
    assert dim == 8 and "good" in vectors and "superb" not in vectors
    first = (sst / "train.txt").read_text().splitlines()[0]
    assert D.parse_tree(first).tokens == tuple(w.rstrip(")") for w in first.split() if not w.startswith("("))
    again, _ = C.write_corpus(tmp_path / "again", n_train=300, n_dev=60, n_test=60, dim=8, seed=3)
    assert (again / "train.txt").read_text() == (sst / "train.txt").read_text()
