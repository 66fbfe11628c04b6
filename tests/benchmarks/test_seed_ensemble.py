"""benchmarks/seed_ensemble.py: S seeds as one block-diagonal model, exact before rounding compounds."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import seed_ensemble as se


@pytest.mark.parametrize("shape, rows_apart", [((3, 8), True), ((4, 8), True), ((8,), False),
                                                ((2, 8), False)])
def test_members_come_back_out_of_the_ensemble_and_other_members_are_zero_in_their_rows(
        shape, rows_apart):
    """A kernel (rows per member), a bias, the GRU's (2, 3·units) bias: 2 gates of width 4."""
    rng = np.random.default_rng(0)
    members = [rng.normal(size=shape).astype("float32") for _ in range(3)]
    joined = se.interleave(members, 4, rows_apart=rows_apart)
    assert joined.shape == ((3 * shape[0],) if rows_apart else shape[:-1]) + (3 * shape[-1],)
    for s, m in enumerate(members):
        np.testing.assert_array_equal(se.member(joined, s, 3, 4, rows_apart), m)
    if rows_apart:  # member 0's rows hold nothing of member 1 or 2
        blocks = joined[:shape[0]].reshape(shape[0], 2, 3, 4)
        assert not blocks[:, :, 1:, :].any()


def test_one_training_step_as_one_model_is_each_seeds_own_step():
    """Two seeds of a study configuration, one step each way: every weight within float rounding."""
    configs = se.member_configs("gru", 2, 50, 1)
    configs = [c.with_overrides(["data.num_train=64", "data.num_val=32", "data.num_test=32"])
               for c in configs]
    assert se.one_step(configs) < 1e-5
