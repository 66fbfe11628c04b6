"""The README's code must run as printed."""

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_readme_cell_example_builds_and_trains():
    (example,) = [block for block in python_blocks() if "PeepholeLSTMCell" in block]
    namespace: dict = {}
    exec(example, namespace)  # noqa: S102 - our own README
    model = namespace["model"]
    model.compile("adam", "binary_crossentropy")
    x = np.array([[5, 7, 9, 0], [3, 0, 0, 0]], dtype="int32")
    model.fit(x, np.array([1.0, 0.0]), epochs=1, verbose=0)
    assert model.predict(x, verbose=0).shape == (2, 1)
    assert any("peephole" in w.path for w in model.weights)
