import os

import cv2
import numpy as np
import pytest
from PIL import Image

from l2caf import images
from l2caf.images import ImageError, list_images, read_image
from tests.helpers import REPO_ROOT


def test_formats_become_rgb8(tmp_path):
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0] = 200  # red
    cv2.imwrite(str(tmp_path / "a.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    np.testing.assert_array_equal(read_image(str(tmp_path / "a.png")), rgb)

    cv2.imwrite(str(tmp_path / "gray.png"), np.full((4, 5), 77, np.uint8))
    assert read_image(str(tmp_path / "gray.png")).tolist() == np.full((4, 5, 3), 77).tolist()

    sixteen = np.full((4, 5, 3), 65535, np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), sixteen)
    image = read_image(str(tmp_path / "deep.png"))
    assert image.dtype == np.uint8 and image.max() == 255

    rgba = np.zeros((4, 5, 4), np.uint8)  # fully transparent black -> white
    cv2.imwrite(str(tmp_path / "t.png"), rgba)
    assert read_image(str(tmp_path / "t.png")).min() == 255


def test_bad_inputs_name_the_file(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ImageError, match="broken.jpg: not a readable image"):
        read_image(str(tmp_path / "broken.jpg"))
    with pytest.raises(ImageError, match="missing.png: no such file"):
        read_image(str(tmp_path / "missing.png"))
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageError, match="empty.png"):
        read_image(str(tmp_path / "empty.png"))


def test_list_images(tmp_path):
    for name in ["b.jpg", "a.PNG", "notes.txt"]:
        (tmp_path / name).write_bytes(b"x")
    assert [p.split("/")[-1] for p in list_images(str(tmp_path))] == ["a.PNG", "b.jpg"]
    listing = tmp_path / "list.txt"
    listing.write_text("# images\nb.jpg\n\n/abs/c.jpg\n")
    assert list_images(str(listing)) == [str(tmp_path / "b.jpg"), "/abs/c.jpg"]
    with pytest.raises(ImageError, match="no such image, folder or list file"):
        list_images(str(tmp_path / "nothing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageError, match="holds no images"):
        list_images(str(tmp_path / "empty"))


def test_one_image_spelled_two_ways_is_listed_once(tmp_path, monkeypatch):
    (tmp_path / "b.jpg").write_bytes(b"x")
    listing = tmp_path / "list.txt"
    listing.write_text("./b.jpg\nb.jpg\nsub/../b.jpg\n%s\n" % (tmp_path / "." / "b.jpg"))
    assert list_images(str(listing)) == [str(tmp_path / "b.jpg")]
    monkeypatch.chdir(tmp_path)
    assert list_images("./b.jpg") == ["b.jpg"]
    assert list_images(".") == ["b.jpg"]


def test_an_image_over_the_pixel_limit_is_refused_before_decoding(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "MAX_PIXELS", 100)
    cv2.imwrite(str(tmp_path / "big.png"), np.zeros((10, 11, 3), np.uint8))
    with pytest.raises(ImageError, match=r"big.png: the image has 11x10 pixels, over the limit "
                                         r"of 0.0001 megapixels"):
        read_image(str(tmp_path / "big.png"))
    cv2.imwrite(str(tmp_path / "small.png"), np.zeros((10, 10, 3), np.uint8))
    assert read_image(str(tmp_path / "small.png")).shape == (10, 10, 3)


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :10] = 255  # the stored left band is the upright top
    for orientation, upright in ((1, pixels), (6, np.rot90(pixels, -1)), (3, pixels[::-1, ::-1]),
                                 (8, np.rot90(pixels, 1))):
        exif = Image.Exif()
        exif[0x0112] = orientation
        path = str(tmp_path / ("o%d.jpg" % orientation))
        Image.fromarray(pixels).save(path, exif=exif, quality=100)
        image = read_image(path)
        assert image.shape == upright.shape
        assert np.abs(image.astype(int) - upright).max() < 40


def test_truncated_and_undecodable_files_are_image_errors(tmp_path):
    data = open(os.path.join(REPO_ROOT, "input_imgs", "chelsea.jpg"), "rb").read()
    (tmp_path / "cut.jpg").write_bytes(data[:len(data) // 2])
    with pytest.raises(ImageError, match="cut.jpg: not a readable image"):
        read_image(str(tmp_path / "cut.jpg"))
    ok, png = cv2.imencode(".png", np.zeros((50, 50, 3), np.uint8))
    (tmp_path / "cut.png").write_bytes(png.tobytes()[:60])
    with pytest.raises(ImageError, match="cut.png: not a readable image"):
        read_image(str(tmp_path / "cut.png"))
