"""The "Analyse phases" dock widget in a real viewer: run, table, plots, mask layers, exports."""

from __future__ import annotations

import json

import numpy as np
import pytest


def _shown(table) -> dict[str, list[str]]:
    """Column title -> the texts a user reads in a magicgui Table."""
    native = table.native
    return {
        native.horizontalHeaderItem(c).text(): [
            native.item(r, c).text() for r in range(native.rowCount())
        ]
        for c in range(native.columnCount())
    }


def _hidden_rows(table) -> int:
    """How many rows of a shown table lie (partly) outside its viewport."""
    native = table.native
    height = native.viewport().height()
    return sum(
        native.rowViewportPosition(r) + native.rowHeight(r) > height
        for r in range(native.rowCount())
    )


def _probabilities(labels: np.ndarray, k: int) -> np.ndarray:
    from scipy import ndimage

    onehot = np.stack([(labels == v).astype(np.float32) for v in range(1, k + 1)])
    smooth = np.stack([ndimage.gaussian_filter(p, 1.0) for p in onehot])
    return smooth / smooth.sum(axis=0, keepdims=True)


@pytest.mark.gui
def test_analyse_widget_runs_and_shows_table_plots_and_masks(
    make_napari_viewer, qtbot, tmp_path, save_screenshot, save_dock
):
    from battery_seg.phantom import make_anode

    labels = make_anode((24, 64, 64), seed=0)
    viewer = make_napari_viewer()
    layer = viewer.add_labels(labels, name="anode labels", scale=(0.5, 0.5, 0.5))
    probabilities = viewer.add_image(
        _probabilities(labels, 4), name="probabilities", scale=(1.0, 0.5, 0.5, 0.5), visible=False
    )
    _, widget = viewer.window.add_plugin_dock_widget("napari-battery-seg", "Analyse phases")
    assert widget._labels_layer.value is layer
    assert widget._voxel_size.value == "0.5 0.5 0.5"  # prefilled from the layer scale
    assert widget._networks.value == "pore; solid=silicon+cbd+graphite"
    widget._probabilities_layer.value = probabilities
    widget._tortuosity.value = True
    widget._device.value = "cpu"

    widget.controls.run_button.native.click()
    qtbot.waitUntil(
        lambda: widget.result is not None and not widget.controls.running, timeout=180_000
    )

    result = widget.result
    assert result.config.voxel_size == (0.5, 0.5, 0.5)
    assert result.config.phases.names == ("pore", "silicon", "cbd", "graphite")
    assert list(widget.tables) == [
        "Volume fractions and connectivity",
        "Surface and interfacial areas",
        "Tortuosity (TauFactor)",
    ]
    fractions_table = widget.tables["Volume fractions and connectivity"]
    assert fractions_table.row_headers == ("pore", "silicon", "cbd", "graphite", "solid")
    table = _shown(fractions_table)
    assert all("(" in title for title in table), "every column names its unit"
    fractions = np.bincount(labels.ravel(), minlength=5)[1:] / labels.size
    low, high = result.uncertainty["phases"]["pore"]["volume_fraction"]["range"]
    assert table["volume fraction\n(–)"][0] == f"{fractions[0]:.4f} ({low:.4f}–{high:.4f})"
    assert all("e-" not in cell for column in table.values() for cell in column)
    surfaces = widget.tables["Surface and interfacial areas"]
    assert "pore | silicon" in surfaces.row_headers  # interfacial areas shown, not JSON only
    assert "area\n(µm²)" in _shown(surfaces)
    tau = result.tortuosity["pore"]["z"].tortuosity
    tortuosity = _shown(widget.tables["Tortuosity (TauFactor)"])
    assert 1.0 < tau < 10.0 and tortuosity["τ\n(–)"][0].startswith(f"{tau:.3f}")
    assert widget.controls.status.startswith("Done in ") and widget._estimate.value == ""
    plots = widget._figure.axes
    assert len(plots) == 1 and len(plots[0].lines) == 4
    masks = [viewer.layers[f"{n} through-connected (z)"] for n in ("pore", "solid")]
    for mask_layer in masks:
        np.testing.assert_array_equal(mask_layer.scale, (0.5, 0.5, 0.5))
        assert set(np.unique(mask_layer.data)) <= {0, 1}
    np.testing.assert_array_equal(masks[0].data, result.masks[("pore", "z")])

    widget.export_csv(tmp_path / "stats.csv")
    widget.export_json(tmp_path / "stats.json")
    written = widget.export_masks(tmp_path)
    assert sorted(p.name for p in written) == ["pore_z.tif", "solid_z.tif"]
    data = json.loads((tmp_path / "stats.json").read_text(encoding="utf-8"))
    assert data["phases"]["pore"]["tortuosity"]["z"] == pytest.approx(tau)
    assert "range" in data["uncertainty"]["phases"]["pore"]["volume_fraction"]
    assert (tmp_path / "stats.csv").read_text().count("\n") == 6

    masks[0].visible = True
    viewer.window.resize(1500, 1000)
    viewer.dims.set_point(1, 6.0)  # a z slice through the middle of the electrode
    viewer.reset_view()
    save_screenshot(viewer, "analyse_widget")
    save_dock(widget, "dock_analyse")
    # every row of every table is in view once shown (the dock scrolls, the tables do not)
    assert {title: _hidden_rows(t) for title, t in widget.tables.items()} == dict.fromkeys(
        widget.tables, 0
    )


@pytest.mark.gui
def test_bad_settings_are_shown_not_raised(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.add_labels(np.ones((4, 8, 8), dtype=np.uint8), name="labels")
    _, widget = viewer.window.add_plugin_dock_widget("napari-battery-seg", "Analyse phases")
    widget._voxel_size.value = "0.5 x"
    widget.run()
    assert "not three numbers" in widget.controls.status
    assert not widget.controls.running
    widget._voxel_size.value = "1 1 1"
    widget._phases.value = "pore,solid"
    widget._networks.value = "ionic=electrolyte"
    widget.run()
    assert "No phase 'electrolyte'" in widget.controls.status


@pytest.mark.gui
def test_analyse_widget_size_histograms_representativity_and_pybamm_export(
    make_napari_viewer, qtbot, tmp_path
):
    from battery_seg.phantom import make_anode

    labels = make_anode((16, 40, 40), seed=1)
    viewer = make_napari_viewer()
    viewer.add_labels(labels, name="anode labels", scale=(0.5, 0.5, 0.5))
    _, widget = viewer.window.add_plugin_dock_widget("napari-battery-seg", "Analyse phases")
    widget._connectivity.value = False
    widget.metric_options.size_distribution.value = True
    widget.metric_options.representativity.value = True
    widget.metric_options.cbd_diffusivity.value = "x"
    widget.run()
    assert "CBD diffusivity 'x' is not a number" in widget.controls.status
    widget.metric_options.cbd_diffusivity.value = ""
    assert not widget.cell_model.button.enabled

    widget.controls.run_button.native.click()
    qtbot.waitUntil(
        lambda: widget.result is not None and not widget.controls.running, timeout=180_000
    )

    result = widget.result
    assert set(result.metrics.sizes) == {"pore", "silicon", "cbd", "graphite"}
    assert set(result.metrics.representativity) == set(result.metrics.sizes)
    assert not widget.size_histograms.canvas.isHidden()
    continuous, discrete = widget.size_histograms.figure.axes
    assert len(continuous.lines) == 8  # a curve and a legend entry per phase
    assert len(discrete.patches) > 0
    assert continuous.get_xlabel() == "local thickness (µm)"
    assert widget.cell_model.button.enabled
    widget.cell_model.electrode.value = "negative"
    path = widget.cell_model.export(tmp_path / "cell.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["pybamm"]["Negative electrode porosity"] == pytest.approx(
        result.volume_fractions["pore"]
    )
    assert data["pybamm"]["Negative particle radius [m]"] > 0
