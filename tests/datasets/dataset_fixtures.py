"""Builders of the miniature data files the dataset tests use."""

from __future__ import annotations

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
