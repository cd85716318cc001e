"""napari sample data: a synthetic Si–graphite anode tomogram and its ground truth.

Contributed as ``napari-battery-seg.sample_anode`` ("Si–graphite anode (synthetic)" under
File > Open Sample). No napari or Qt import is needed to build the layer data.
"""

from __future__ import annotations

import numpy as np

from .phantom import make_sample

__all__ = ["sample_anode"]


def sample_anode(
    shape: tuple[int, int, int] = (128, 128, 128),
    seed: int = 0,
    voxel_size: float | tuple[float, float, float] = 0.5,
) -> list[tuple]:
    """Layer data of the synthetic anode: the X-ray CT image and the ground-truth labels.

    Parameters
    ----------
    shape : tuple of 3 int
        Volume shape (z, y, x).
    seed : int
        Random seed of the phantom and its imaging.
    voxel_size : float or tuple of 3 float
        Voxel size in µm; it becomes the layers' ``scale``.

    Returns
    -------
    list of (data, kwargs, layer_type)
        ``[(image, {...}, "image"), (labels, {...}, "labels")]``.

    Examples
    --------
    >>> [layer_type for _, _, layer_type in sample_anode((16, 32, 32))]
    ['image', 'labels']
    """
    sample = make_sample(shape, seed, voxel_size=voxel_size)
    low, high = np.percentile(sample.image, [0.5, 99.5])
    metadata = {
        "voxel_size": sample.voxel_size,
        "unit": sample.unit,
        "source": f"battery_seg.phantom.make_sample(shape={tuple(shape)}, seed={seed})",
    }
    units = (sample.unit,) * 3
    image_kwargs = {
        "name": "anode XCT (synthetic)",
        "scale": sample.voxel_size,
        "units": units,
        "contrast_limits": (float(low), float(high)),
        "colormap": "gray",
        "metadata": metadata,
    }
    labels_kwargs = {
        "name": "anode truth",
        "scale": sample.voxel_size,
        "units": units,
        "colormap": sample.phases.colormap(),
        "opacity": 0.5,
        "metadata": {**metadata, "phases": sample.phases.to_dict()},
    }
    return [(sample.image, image_kwargs, "image"), (sample.labels, labels_kwargs, "labels")]
