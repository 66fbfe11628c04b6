"""The five recurrent cells of RNN Cell Lab, as Keras 3 cells for ``keras.layers.RNN``.

>>> import cells
>>> cells.names()
['vanilla', 'lstm', 'peephole', 'coupled', 'gru']
>>> cell = cells.get("cifg", units=16)   # a CoupledLSTMCell
"""

from cells import catalog
from cells.base import get, names, register
from cells.coupled import CoupledLSTMCell
from cells.fast import ProjectedRNN
from cells.gru import GRUCell
from cells.inference import compile_inference, inference_jit
from cells.lstm import LSTMCell
from cells.peephole import PeepholeLSTMCell
from cells.vanilla import VanillaRNNCell

__all__ = [
    "CoupledLSTMCell",
    "GRUCell",
    "LSTMCell",
    "PeepholeLSTMCell",
    "ProjectedRNN",
    "VanillaRNNCell",
    "catalog",
    "compile_inference",
    "get",
    "inference_jit",
    "names",
    "register",
]
