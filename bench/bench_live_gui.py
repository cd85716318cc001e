"""Live mode in a real viewer: how long napari's event loop stalls after a stroke, against napari
alone replacing one Labels layer's data (the peer, in the same viewer and run).

The Train dock's Live mode is switched on over a phantom tiled to ``--size``² (8 slices), one
slice is painted (1 %), then ``--strokes`` more strokes; after each, the time until the slice's
prediction is shown, the longest gaps between 10 ms timer ticks (the stroke's own redraw, as
napari paints it, among them) and how long the dock's showing of the update held the Qt thread
before napari redrew. Then the peer: the live
layer's data replaced by napari alone, as often; and the floor: napari panning the view by one
pixel, a redraw with no data changed. Needs an X server with OpenGL::

    xvfb-run -a -s "-screen 0 1920x1080x24" python bench/bench_live_gui.py --size 512
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


class Ticks:
    """Gaps between the ticks of a 10 ms Qt timer: how long the event loop was blocked."""

    def __init__(self) -> None:
        from qtpy.QtCore import QTimer

        self.gaps: list[float] = []
        self.last = time.perf_counter()
        self.timer = QTimer()
        self.timer.timeout.connect(self._tick)
        self.timer.start(10)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self.last)
        self.last = now

    def restart(self) -> None:
        self.gaps, self.last = [], time.perf_counter()

    def longest(self, count: int = 3) -> list[float]:
        return sorted(self.gaps, reverse=True)[:count]


def run_events(seconds: float = 0.0, until=None) -> None:
    from qtpy.QtWidgets import QApplication

    app, end = QApplication.instance(), time.perf_counter() + seconds
    while time.perf_counter() < end or (until is not None and not until()):
        app.processEvents()
        time.sleep(0.002)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512, help="slice size (a multiple of 256)")
    parser.add_argument("--strokes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    import napari
    import torch

    from battery_seg.phantom import make_sample
    from battery_seg.training import simulate_strokes

    torch.set_num_threads(args.threads)
    sample = make_sample((8, 256, 256), seed=0)
    tiles = (1, args.size // 256, args.size // 256)
    image, truth = np.tile(sample.image, tiles), np.tile(sample.labels, tiles)
    viewer = napari.Viewer()
    viewer.window._qt_window.resize(1920, 1080)
    viewer.add_image(image, name="anode")
    _, widget = viewer.window.add_plugin_dock_widget("napari-battery-seg", "Train from labels")
    strokes = widget.new_strokes_layer()
    viewer.dims.set_point(0, 4)
    widget.live_section.set_expanded(True)
    live = widget.live
    live.live_box.value = True
    handled = []  # seconds the Qt thread spends showing each update (the dock's own work)
    show = type(live).show_slice

    def timed_show(section, *a) -> None:
        start = time.perf_counter()
        show(section, *a)
        handled.append(time.perf_counter() - start)

    type(live).show_slice = timed_show
    print(f"{args.size}² slice, {args.threads} torch thread(s)")
    painted = simulate_strokes(truth, slices=[4], fraction=0.01, seed=0)
    ticks = Ticks()
    start = time.perf_counter()
    strokes.data_setitem(np.nonzero(painted), painted[painted > 0])
    run_events(until=lambda: live.live is not None)
    shown = time.perf_counter() - start
    run_events(0.5, until=lambda: live.worker is None)
    print(
        f"  first strokes: slice shown after {shown:.2f} s (features of the slice computed); "
        f"longest event-loop gap {ticks.longest(1)[0]:.3f} s (showing it took the Qt thread "
        f"{1000 * handled[-1]:.0f} ms: two new layers)"
    )
    for k in range(args.strokes):
        more = simulate_strokes(truth, slices=[4], fraction=0.002, seed=100 + k)
        new = (more > 0) & (painted == 0)
        painted = np.where(new, more, painted)
        before = live.live
        ticks.restart()
        start = time.perf_counter()
        strokes.data_setitem(np.nonzero(new), more[new])
        run_events(until=lambda before=before: live.live is not before)
        shown = time.perf_counter() - start
        run_events(0.3, until=lambda: live.worker is None)
        gaps = ", ".join(f"{g:.3f}" for g in ticks.longest())
        print(
            f"  stroke {k}: slice shown after {shown:.2f} s; longest event-loop gaps {gaps} s "
            f"(showing it took the Qt thread {1000 * handled[-1]:.0f} ms, then napari redraws)"
        )
    layer = viewer.layers["anode live"]
    peer = []
    for _ in range(args.strokes):
        ticks.restart()
        layer.data = (layer.data % 4 + 1).astype(layer.data.dtype)
        run_events(0.3)
        peer.append(ticks.longest(1)[0])
        print(
            f"  peer, napari alone replacing one Labels layer's data: longest gap {peer[-1]:.3f} s"
        )
    print(f"  median longest gap of the peer: {float(np.median(peer)):.3f} s")
    pan = []  # the floor: a redraw of the same layers, nothing in them changed
    for k in range(args.strokes):
        ticks.restart()
        camera = getattr(viewer, "scene", viewer).camera  # napari >= 0.9: viewer.scene
        centre = list(camera.center)
        centre[-1] += 1 if k % 2 == 0 else -1
        camera.center = tuple(centre)
        run_events(0.3)
        pan.append(ticks.longest(1)[0])
        print(f"  floor, napari panning the view by one pixel: longest gap {pan[-1]:.3f} s")
    print(f"  median longest gap of the floor: {float(np.median(pan)):.3f} s")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
