import numpy as np
import tifffile

from battery_seg.cli import main
from battery_seg.io import open_volume
from battery_seg.phantom import make_sample


def test_sample_writes_image_and_ground_truth(tmp_path, capsys):
    assert (
        main(["sample", "-o", str(tmp_path / "s"), "--shape", "16", "24", "20", "--seed", "3"]) == 0
    )
    expected = make_sample((16, 24, 20), seed=3)
    image = open_volume(tmp_path / "s" / "image.tif")
    labels = open_volume(tmp_path / "s" / "labels.tif")
    np.testing.assert_array_equal(image.data.compute(), expected.image)
    np.testing.assert_array_equal(labels.data.compute(), expected.labels)
    assert image.data.dtype == np.uint16
    assert set(np.unique(labels.data.compute())) == {1, 2, 3, 4}
    assert image.voxel_size == expected.voxel_size and image.voxel_size_source == "metadata"
    assert labels.phases.names == ("pore", "silicon", "cbd", "graphite")
    assert "1=pore, 2=silicon, 3=cbd, 4=graphite" in capsys.readouterr().out


def test_sample_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "s"
    args = ["sample", "-o", str(out), "--shape", "8", "8", "8"]
    assert main(args) == 0
    before = tifffile.imread(out / "image.tif")
    assert main(["sample", "-o", str(out), "--shape", "9", "9", "9"]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--overwrite" in err and "Traceback" not in err
    np.testing.assert_array_equal(tifffile.imread(out / "image.tif"), before)
    assert main([*args, "--overwrite", "--seed", "1"]) == 0


def test_sample_refuses_a_tiny_shape(tmp_path, capsys):
    assert main(["sample", "-o", str(tmp_path), "--shape", "2", "8", "8"]) == 2
    assert "too small" in capsys.readouterr().err
