import cv2
import numpy as np
import pytest

from l2caf.images import ImageError, list_images, read_image


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
