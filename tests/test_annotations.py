"""wsolevaluation's metadata as annotations: read from hand-written files, told apart from
an XML folder, the same records and scores as the XMLs of the same images, clear errors.
(The XML reader and writer: tests/test_synthetic.py.)"""
import numpy as np
import pytest

from l2caf.annotations import (Annotation, BoxObject, read_annotations, read_wsol_metadata,
                               write_voc_xml)
from l2caf.evaluation import ImageRecord, evaluate_records, record_from_annotation

# Two images: the first with two boxes of class 65, the second with one of class 970.
METADATA = {
    "image_ids.txt": "val/ILSVRC2012_val_00000001.JPEG\nval/ILSVRC2012_val_00000002.JPEG\n",
    "class_labels.txt": "val/ILSVRC2012_val_00000001.JPEG,65\n"
                        "val/ILSVRC2012_val_00000002.JPEG,970\n",
    "image_sizes.txt": "val/ILSVRC2012_val_00000001.JPEG,500,375\n"
                       "val/ILSVRC2012_val_00000002.JPEG,300,200\n",
    "localization.txt": "val/ILSVRC2012_val_00000001.JPEG,111,108,441,193\n"
                        "val/ILSVRC2012_val_00000002.JPEG,45,49,299,162\n"
                        "val/ILSVRC2012_val_00000001.JPEG,2,69,437,207\n",
}
CLASS_IDS = {"n01751748": 65, "n09229709": 970}


def write_files(folder, files):
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    return str(folder)


def test_metadata_reads_into_annotations(tmp_path):
    annotations = read_annotations(write_files(tmp_path / "metadata", METADATA))
    assert list(annotations) == ["ILSVRC2012_val_00000001", "ILSVRC2012_val_00000002"]
    assert annotations["ILSVRC2012_val_00000001"] == Annotation(
        filename="val/ILSVRC2012_val_00000001.JPEG", width=500, height=375,
        objects=[BoxObject(65, (111, 108, 441, 193)), BoxObject(65, (2, 69, 437, 207))])
    assert annotations["ILSVRC2012_val_00000002"] == Annotation(
        filename="val/ILSVRC2012_val_00000002.JPEG", width=300, height=200,
        objects=[BoxObject(970, (45, 49, 299, 162))])


def write_xmls(folder):
    """The same two images as METADATA, as ILSVRC XMLs naming WordNet ids."""
    folder.mkdir()
    write_voc_xml(str(folder / "ILSVRC2012_val_00000001.xml"), Annotation(
        "ILSVRC2012_val_00000001", 500, 375,
        [BoxObject("n01751748", (111, 108, 441, 193)), BoxObject("n01751748", (2, 69, 437, 207))]))
    write_voc_xml(str(folder / "ILSVRC2012_val_00000002.xml"), Annotation(
        "ILSVRC2012_val_00000002", 300, 200, [BoxObject("n09229709", (45, 49, 299, 162))]))
    return str(folder)


@pytest.mark.parametrize("protocol", ["cam", "adl", "wsol"])
def test_metadata_and_xmls_of_the_same_images_give_the_same_scores(tmp_path, protocol):
    from_metadata = read_annotations(write_files(tmp_path / "metadata", METADATA))
    from_xmls = read_annotations(write_xmls(tmp_path / "xmls"))
    assert list(from_metadata) == list(from_xmls)
    heatmap = np.zeros((7, 7))
    heatmap[1:4, 1:5] = 1.0
    scores = []
    for annotations in (from_metadata, from_xmls):
        records = [record_from_annotation(annotation, CLASS_IDS, [65, 970], {65: heatmap,
                                                                            970: heatmap.T})
                   for annotation in annotations.values()]
        assert [(r.gt_labels, r.gt_boxes, r.image_size) for r in records] == [
            ((65,), {65: [(111, 108, 441, 193), (2, 69, 437, 207)]}, (375, 500)),
            ((970,), {970: [(45, 49, 299, 162)]}, (200, 300))]
        scores.append(evaluate_records(records, protocol, 0.2, [0.1, 0.3, 0.5]))
    assert scores[0] == scores[1]


def test_a_folder_of_neither_kind_is_an_error(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(ValueError, match="holds no annotation XMLs and no wsolevaluation "
                                         "metadata"):
        read_annotations(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no such annotation folder"):
        read_annotations(str(tmp_path / "nowhere"))


@pytest.mark.parametrize("missing", sorted(METADATA))
def test_an_incomplete_metadata_folder_names_the_missing_file(tmp_path, missing):
    files = {name: text for name, text in METADATA.items() if name != missing}
    folder = write_files(tmp_path / "metadata", files)
    with pytest.raises(ValueError, match="%s: no %s; a wsolevaluation metadata folder holds "
                                         % (folder, missing)):
        read_annotations(folder)


@pytest.mark.parametrize("name, text, message", [
    ("localization.txt", "val/ILSVRC2012_val_00000001.JPEG,111,108,441\n",
     r"localization.txt:1: expected path,x0,y0,x1,y1, got 'val/ILSVRC2012_val_00000001.JPEG,"
     r"111,108,441'"),
    ("class_labels.txt", "val/ILSVRC2012_val_00000001.JPEG,sea snake\n",
     "class_labels.txt:1: expected path,label"),
    ("image_sizes.txt", "val/ILSVRC2012_val_00000001.JPEG,500,375\n",
     "image_sizes.txt has no line for val/ILSVRC2012_val_00000002.JPEG, listed in image_ids.txt"),
    ("image_ids.txt", "val2/0/0.jpeg\nval2/1/0.jpeg\n",
     "val2/0/0.jpeg and val2/1/0.jpeg share the file name 0; results are matched to "
     "annotations by file name"),
])
def test_malformed_metadata_is_an_error_naming_the_file(tmp_path, name, text, message):
    files = dict(METADATA, **{name: text})
    if name == "image_ids.txt":
        files.update({"class_labels.txt": "val2/0/0.jpeg,1\nval2/1/0.jpeg,2\n",
                      "image_sizes.txt": "val2/0/0.jpeg,10,10\nval2/1/0.jpeg,10,10\n",
                      "localization.txt": "val2/0/0.jpeg,1,1,5,5\nval2/1/0.jpeg,1,1,5,5\n"})
    with pytest.raises(ValueError, match=message):
        read_wsol_metadata(write_files(tmp_path / "metadata", files))


def test_records_of_metadata_need_classes_the_run_has(tmp_path):
    annotations = read_annotations(write_files(tmp_path / "metadata", METADATA))
    with pytest.raises(KeyError, match="names class id 970, which is not one of the 1 classes"):
        record_from_annotation(annotations["ILSVRC2012_val_00000002"], {"n01751748": 65},
                               [65], {})


def test_records_of_metadata_and_xml_images_are_alike():
    """Both kinds of Annotation make the same ImageRecord."""
    by_name = Annotation("a", 40, 30, [BoxObject("n01751748", (1, 2, 3, 4))])
    by_id = Annotation("a", 40, 30, [BoxObject(65, (1, 2, 3, 4))])
    heatmaps = {65: np.ones((7, 7))}
    assert record_from_annotation(by_name, CLASS_IDS, [65], heatmaps) == \
        record_from_annotation(by_id, CLASS_IDS, [65], heatmaps) == \
        ImageRecord("a", (65,), {65: [(1, 2, 3, 4)]}, [65], heatmaps, (30, 40))
