"""Bad input gets one clear ValueError naming the key, what was received and the valid choices."""

import re

import pytest

import cells


def test_unknown_name_lists_the_valid_names_and_aliases():
    with pytest.raises(ValueError, match="Unknown cell name: 'lstn'") as error:
        cells.get("lstn", units=3)
    for name in cells.names():
        assert name in str(error.value)
    assert "cifg=coupled" in str(error.value)


def test_aliases_give_the_canonical_cell():
    assert type(cells.get("cifg", units=2)) is cells.CoupledLSTMCell
    assert type(cells.get("simple", units=2)) is cells.VanillaRNNCell


def test_names_are_the_five_in_order():
    assert cells.names() == ["vanilla", "lstm", "peephole", "coupled", "gru"]


def test_a_name_cannot_be_registered_twice():
    with pytest.raises(ValueError, match="'lstm' is already registered"):
        cells.register("lstm")(type("Other", (cells.LSTMCell,), {}))


@pytest.mark.parametrize("name", cells.names())
@pytest.mark.parametrize("units", [0, -2, 1.5, "8", True, None])
def test_units_must_be_a_positive_integer(name, units):
    with pytest.raises(ValueError, match=re.escape(f"Received: units={units!r}")):
        cells.get(name, units=units)


@pytest.mark.parametrize("key", ["dropout", "recurrent_dropout"])
@pytest.mark.parametrize("rate", [-0.1, 1.0, 2, "0.5"])
def test_dropout_rates_must_lie_in_0_1(key, rate):
    with pytest.raises(ValueError, match=re.escape(f"`{key}` must be a float in [0, 1). Received: {key}={rate!r}")):
        cells.get("lstm", units=2, **{key: rate})


@pytest.mark.parametrize(("name", "key"), [("gru", "reset_after"), ("lstm", "unit_forget_bias"),
                                           ("vanilla", "use_bias")])
def test_flags_must_be_booleans(name, key):
    with pytest.raises(ValueError, match=re.escape(f"`{key}` must be True or False. Received: {key}='yes'")):
        cells.get(name, units=2, **{key: "yes"})


def test_seed_must_be_an_integer():
    with pytest.raises(ValueError, match=re.escape("Received: seed='1'")):
        cells.get("gru", units=2, seed="1")


@pytest.mark.parametrize("key", ["activation", "kernel_initializer", "recurrent_constraint"])
def test_unknown_keras_objects_are_named(key):
    with pytest.raises(ValueError, match="no_such_thing"):
        cells.get("lstm", units=2, **{key: "no_such_thing"})


def test_unknown_arguments_are_refused():
    with pytest.raises(ValueError, match="reset_after"):
        cells.get("lstm", units=2, reset_after=True)
