"""Builders of the miniature data files the tests use (the dataset tests and the training-path tests).

`imdb_files`, `write_tarball` and `SENTENCES` build the files the loaders' tests check in detail;
`write_mini_data_dir` builds one data dir in the real layout for training end to end, where the
Multi30k test sentences repeat the training ones (so a tiny model can learn them by heart).
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

REVIEWS = {
    # (split, label): number of reviews
    ("train", "pos"): 10,
    ("train", "neg"): 10,
    ("test", "pos"): 6,
    ("test", "neg"): 6,
}


def review_text(split: str, label: str, i: int) -> str:
    word = "great" if label == "pos" else "awful"
    return f"Review {i} of {split}: a {word} film.<br /><br />Truly {word}, {word}!"


def imdb_files() -> dict[str, bytes]:
    """Member name → content of a miniature aclImdb tree (with an unsup folder to be skipped)."""
    files = {"aclImdb/README": b"miniature", "aclImdb/train/unsup/0_0.txt": b"unlabelled"}
    for (split, label), count in REVIEWS.items():
        for i in range(count):
            text = review_text(split, label, i)
            files[f"aclImdb/{split}/{label}/{i}_{7 if label == 'pos' else 2}.txt"] = text.encode()
    return files


def write_tarball(path: Path, files: dict[str, bytes], extra=()) -> Path:
    """A .tar.gz of `files`, plus `extra` TarInfo members (links, odd paths) without content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.size else None)
    return path


SENTENCES = {
    # split: [(en, de), …]
    "train": [
        ("A man, smiling.", "Ein Mann, lächelnd."),
        ("A dog runs.", "Ein Hund rennt."),
        ("A man runs.", "Ein Mann rennt."),
        ("Two dogs play.", "Zwei Hunde spielen."),
        ("A dog's ball!", "Der Ball eines Hundes!"),
        ("A man (smiling) runs.", "Ein Mann (lächelnd) rennt."),
    ],
    "val": [("A Zebra runs.", "Ein Zebra rennt."), ("A man.", "Ein Mann."), ("Dogs.", "Hunde.")],
    "test_2016_flickr": [("A dog, smiling.", "Ein Hund, lächelnd."), ("Two men.", "Zwei Männer.")],
}


MINI_PAIRS = [("a man runs .", "ein mann rennt ."), ("a dog sits .", "ein hund sitzt ."),
              ("two men run .", "zwei männer rennen ."), ("a dog runs .", "ein hund rennt .")]


def write_mini_data_dir(root: Path) -> Path:
    """A data dir with a miniature extracted aclImdb tree (12 + 6 reviews per label) and Multi30k
    de/en gz files (8 / 4 / 4 lines from `MINI_PAIRS`), in the real layout; returns `root`."""
    words = {"pos": "great fine lovely", "neg": "awful dull bad"}
    for split, count in (("train", 12), ("test", 6)):
        for label, text in words.items():
            folder = root / "aclImdb" / split / label
            folder.mkdir(parents=True)
            for i in range(count):
                (folder / f"{i}_{8 if label == 'pos' else 1}.txt").write_text(
                    f"Film {i}: {text}.<br />Really {text.split()[i % 3]}!"
                )
    folder = root / "multi30k"
    folder.mkdir()
    for stem, repeat in (("train", 8), ("val", 4), ("test_2016_flickr", 4)):
        for lang, column in (("en", 0), ("de", 1)):
            lines = [pair[column] for pair in MINI_PAIRS] * (repeat // len(MINI_PAIRS) or 1)
            with gzip.open(folder / f"{stem}.{lang}.gz", "wt", encoding="utf-8") as f:
                f.write("\n".join(lines[:repeat]) + "\n")
    return root
