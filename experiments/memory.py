"""Keep a long process's memory flat across many `run()` calls (issue 12 §7).

What leaked (TensorFlow 2.21, Keras 3.15, measured with ``benchmarks/memory_runs.py``): every
trace of Keras's ``one_step_on_data`` goes through ``ReplicaContext.all_reduce``, which is a
``tf.custom_gradient``; in graph mode that registers a gradient function under a fresh name
(``CustomGradient-<n>``) in TensorFlow's process-wide gradient registry and never removes it.
The function's closure holds the traced graph, and with it every graph it calls (the RNN's while
loop, the optimizer's conds: ~30 ``FuncGraph`` objects a run), so each run kept ~12 MB alive
after its model was gone — ``gc.collect()`` and ``keras.backend.clear_session()`` free nothing,
because the registry is a plain dict.

:func:`custom_gradients_released` drops the names a block registered once it ends. Those
gradient functions are only looked up while a graph that uses them is differentiated (at
tracing time), and the block's models, and so its graphs, are gone when it ends.
"""

from __future__ import annotations

import contextlib

PREFIX = "CustomGradient-"  # the names tf.custom_gradient registers in graph mode


def _gradient_registry() -> dict | None:
    """TensorFlow's name → gradient-function registry (private: None if it moved or TF is absent)."""
    try:
        from tensorflow.python.framework import ops
    except ImportError:
        return None
    registry = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
    return registry if isinstance(registry, dict) else None


@contextlib.contextmanager
def custom_gradients_released():
    """Unregister the ``tf.custom_gradient`` functions registered inside the block when it ends."""
    registry = _gradient_registry()
    before = set(registry) if registry is not None else set()
    try:
        yield
    finally:
        if registry is not None:
            for name in [n for n in list(registry) if n.startswith(PREFIX) and n not in before]:
                registry.pop(name, None)
