import numpy as np
import pytest

from battery_seg import BatterySegError, PhaseSet


def test_presets_have_values_one_to_k():
    anode = PhaseSet.parse("si-graphite")
    assert anode.names == ("pore", "silicon", "cbd", "graphite")
    assert anode.values == (1, 2, 3, 4)
    assert PhaseSet.parse(None) == anode  # default preset
    assert PhaseSet.parse("NMC").names == ("pore", "active", "cbd")


def test_custom_names_and_round_trip():
    phases = PhaseSet.parse("pore, nmc ,cbd")
    assert phases.names == ("pore", "nmc", "cbd")
    assert PhaseSet.from_dict(phases.to_dict()) == phases
    assert PhaseSet.parse(phases.spec()) == phases
    assert phases.describe() == "1=pore, 2=nmc, 3=cbd"


def test_name_value_pairs_encode_foreign_labels():
    phases = PhaseSet.parse("pore=0,nmc=85,cbd=170")
    assert phases.values == (1, 2, 3)
    labels = np.array([[0, 85], [170, 0]], dtype=np.uint8)
    np.testing.assert_array_equal(phases.encode(labels), [[1, 2], [3, 1]])
    assert PhaseSet.parse(phases.spec()) == phases


def test_encode_refuses_values_outside_the_set():
    phases = PhaseSet.parse("nmc")
    with pytest.raises(BatterySegError, match=r"\[7\].*--phases"):
        phases.encode(np.array([0, 1, 7], dtype=np.uint8))
    lenient = phases.encode(np.array([0, 1, 7], dtype=np.uint8), strict=False)
    np.testing.assert_array_equal(lenient, [0, 1, 0])


def test_encode_keeps_unlabelled_zero_and_leaves_input_untouched():
    phases = PhaseSet.parse("si-graphite")
    labels = np.array([0, 1, 2, 3, 4], dtype=np.uint16)
    labels.flags.writeable = False
    out = phases.encode(labels)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, labels)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("graphene", "Unknown phase preset"),
        ("pore,pore", "unique"),
        ("pore=0,cbd", "Mixed"),
        ("pore=a,cbd=1", "not an integer"),
        ("pore=0,cbd=0", "share one file value"),
        ("1pore,cbd", "Invalid phase name"),
    ],
)
def test_bad_specs_are_explained(spec, message):
    with pytest.raises(BatterySegError, match=message):
        PhaseSet.parse(spec)


def test_value_of_and_colormap():
    phases = PhaseSet.parse("si-graphite")
    assert phases.value_of("CBD") == 3
    assert phases["graphite"].value == 4
    with pytest.raises(BatterySegError, match="phases are pore, silicon, cbd, graphite"):
        phases.value_of("nmc")
    colors = phases.colormap()
    assert colors[0] == "transparent" and set(colors) >= {1, 2, 3, 4, None}
