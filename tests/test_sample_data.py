"""napari sample data: the synthetic anode as image and ground-truth layer data (no GUI)."""

from __future__ import annotations

import numpy as np
import pytest

from battery_seg._sample_data import sample_anode
from battery_seg.phantom import make_sample
from battery_seg.phases import PhaseSet


def test_default_sample_is_128_cubed_at_half_a_micrometre():
    (image, image_kwargs, image_type), (labels, labels_kwargs, labels_type) = sample_anode()
    assert (image_type, labels_type) == ("image", "labels")
    assert image.shape == labels.shape == (128, 128, 128)
    assert image.dtype == np.uint16 and labels.dtype == np.uint8
    assert image_kwargs["scale"] == labels_kwargs["scale"] == (0.5, 0.5, 0.5)
    shares = np.bincount(labels.ravel(), minlength=5)[1:] / labels.size
    np.testing.assert_allclose(shares, [0.35, 0.07, 0.08, 0.50], atol=1e-5)
    means = [image[labels == phase].mean() for phase in (1, 3, 4, 2)]  # pore, cbd, graphite, si
    assert means == sorted(means)


def test_layer_tuples_carry_names_scale_units_and_phases():
    (image, image_kwargs, _), (labels, labels_kwargs, _) = sample_anode(
        (16, 32, 32), seed=1, voxel_size=(1.0, 0.5, 0.5)
    )
    expected = make_sample((16, 32, 32), seed=1)
    np.testing.assert_array_equal(image, expected.image)
    np.testing.assert_array_equal(labels, expected.labels)
    assert image_kwargs["name"] == "anode XCT (synthetic)"
    assert labels_kwargs["name"] == "anode truth"
    assert image_kwargs["scale"] == labels_kwargs["scale"] == (1.0, 0.5, 0.5)
    assert image_kwargs["metadata"]["unit"] == "µm"
    assert image_kwargs["units"] == ("µm", "µm", "µm")
    low, high = image_kwargs["contrast_limits"]
    assert image.min() <= low < high <= image.max()
    phases = PhaseSet.from_dict(labels_kwargs["metadata"]["phases"])
    assert phases.names == ("pore", "silicon", "cbd", "graphite")
    assert labels_kwargs["colormap"] == phases.colormap()
    assert set(np.unique(labels)) <= set(phases.values)


def test_napari_accepts_the_layer_data():
    layers = pytest.importorskip("napari.layers")
    from napari.utils.colormaps import DirectLabelColormap

    (image, image_kwargs, _), (labels, labels_kwargs, _) = sample_anode((16, 32, 32))
    image_layer = layers.Image(image, **image_kwargs)
    labels_layer = layers.Labels(labels, **labels_kwargs)
    np.testing.assert_allclose(image_layer.scale, (0.5, 0.5, 0.5))
    np.testing.assert_allclose(labels_layer.scale, (0.5, 0.5, 0.5))
    assert str(image_layer.units[0]) == "micrometer"
    assert isinstance(labels_layer.colormap, DirectLabelColormap)
    graphite_hex = PhaseSet.parse("si-graphite")["graphite"].color.lstrip("#")
    graphite_rgb = [int(graphite_hex[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    graphite = labels_layer.colormap.map(np.array([4]))[0]
    np.testing.assert_allclose(graphite[:3], graphite_rgb, atol=1e-6)
    assert labels_layer.colormap.map(np.array([0]))[0][3] == 0  # 0 stays transparent


def test_manifest_points_at_the_sample_command():
    npe2 = pytest.importorskip("npe2")
    manifest = npe2.PluginManifest.from_distribution("napari-battery-seg")
    commands = {c.id: c.python_name for c in manifest.contributions.commands}
    assert commands["napari-battery-seg.sample_anode"] == "battery_seg._sample_data:sample_anode"
    sample = next(s for s in manifest.contributions.sample_data if s.key == "si_graphite_anode")
    assert sample.command == "napari-battery-seg.sample_anode"
