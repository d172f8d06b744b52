"""Checkpoint checks, restore, save, unpack and the download script, all without network."""
import errno
import importlib.util
import io
import os
import subprocess
import sys
import tarfile

import numpy as np
import pytest

from l2caf.models import checkpoints
from l2caf.models.checkpoints import CheckpointError
from nets.tf_slim_compat import tf

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "scripts", "download_checkpoints.py")

# A few variables of the public InceptionV1 checkpoint, with their real shapes.
INCEPTION_SHAPES = {
    "InceptionV1/Conv2d_1a_7x7/weights": [7, 7, 3, 64],
    "InceptionV1/Conv2d_1a_7x7/BatchNorm/beta": [64],
    "InceptionV1/Logits/Conv2d_0c_1x1/biases": [1001],
}


def make_variables(shapes, initializer=None):
    """One float variable per {name: shape}, in the current graph, in name order."""
    return [tf.compat.v1.get_variable(name, shape, initializer=initializer)
            for name, shape in sorted(shapes.items())]


def save_inception(path, write_version):
    """Save random InceptionV1-named variables at `path`; returns {name: value}."""
    with tf.Graph().as_default():
        variables = make_variables(INCEPTION_SHAPES,
                                   tf.compat.v1.random_normal_initializer())
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            if write_version == "V2":
                checkpoints.save_variables(session, path, variables)
            else:
                tf.compat.v1.train.Saver(
                    var_list=variables, write_version=tf.compat.v1.train.SaverDef.V1
                ).save(session, path, write_meta_graph=False, write_state=False)
            return dict(zip([v.op.name for v in variables], session.run(variables)))


def restore_error(checkpoint_path, shapes, network_name=None):
    """The CheckpointError raised restoring variables of `shapes` from `checkpoint_path`."""
    with tf.Graph().as_default():
        variables = make_variables(shapes)
        with tf.compat.v1.Session() as session:
            with pytest.raises(CheckpointError) as caught:
                checkpoints.restore_variables(session, checkpoint_path, variables, network_name)
    return str(caught.value)


def add_bytes(archive, name, data):
    member = tarfile.TarInfo(name)
    member.size = len(data)
    archive.addfile(member, io.BytesIO(data))


def make_archive(archive_path, checkpoint_prefix, folder_in_archive):
    """A tar.gz with the V2 files of `checkpoint_prefix` under `folder_in_archive`, plus
    an unrelated file."""
    with tarfile.open(archive_path, "w:gz") as archive:
        folder, prefix = os.path.split(checkpoint_prefix)
        for file_name in os.listdir(folder):
            if file_name.startswith(prefix + "."):
                archive.add(os.path.join(folder, file_name),
                            arcname=folder_in_archive + "/" + file_name)
        add_bytes(archive, folder_in_archive + "/eval.graph", b"not a checkpoint")
    return archive_path


@pytest.fixture(scope="module")
def inception_archive(tmp_path_factory):
    """(archive path, saved values) for a small checkpoint saved as inception_v1.ckpt."""
    folder = tmp_path_factory.mktemp("saved")
    values = save_inception(str(folder / "inception_v1.ckpt"), "V2")
    archive = make_archive(str(folder / "inception_v1_2016_08_28.tar.gz"),
                           str(folder / "inception_v1.ckpt"), "inception_v1_2016_08_28")
    return archive, values


@pytest.mark.parametrize("write_version", ["V1", "V2"])
def test_restore_gives_the_saved_values_and_leaves_other_variables(tmp_path, write_version):
    path = str(tmp_path / "model.ckpt")
    saved = save_inception(path, write_version)
    assert os.path.isfile(path) == (write_version == "V1")
    assert checkpoints.checkpoint_exists(path)
    with tf.Graph().as_default():
        variables = make_variables(INCEPTION_SHAPES, tf.compat.v1.zeros_initializer())
        # Like an attention filter: in the graph, never in the checkpoint.
        atten_var = tf.compat.v1.get_variable("Mixed_5c/atten_var", [1, 7, 7],
                                              initializer=tf.compat.v1.ones_initializer())
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            restored_from = checkpoints.restore_variables(session, path, variables,
                                                          "inception_v1")
            assert restored_from == path
            for variable in variables:
                np.testing.assert_array_equal(session.run(variable), saved[variable.op.name])
            np.testing.assert_array_equal(session.run(atten_var), np.ones([1, 7, 7]))


def test_resolve_checkpoint_accepts_file_prefix_index_and_folder(tmp_path):
    v1_path = str(tmp_path / "v1" / "inception_v1.ckpt")
    os.makedirs(os.path.dirname(v1_path))
    save_inception(v1_path, "V1")
    v2_path = str(tmp_path / "v2" / "model.ckpt")
    save_inception(v2_path, "V2")
    assert checkpoints.resolve_checkpoint(v1_path) == v1_path
    assert checkpoints.resolve_checkpoint(v2_path) == v2_path
    assert checkpoints.resolve_checkpoint(v2_path + ".index") == v2_path
    assert checkpoints.resolve_checkpoint(v2_path + ".data-00000-of-00001") == v2_path
    assert checkpoints.resolve_checkpoint(str(tmp_path / "v1")) == v1_path
    assert checkpoints.resolve_checkpoint(str(tmp_path / "v2")) == v2_path

    second = str(tmp_path / "v1" / "resnet_v2_50.ckpt")
    save_inception(second, "V2")
    with pytest.raises(CheckpointError, match="holds 2 checkpoints") as caught:
        checkpoints.resolve_checkpoint(str(tmp_path / "v1"))
    assert v1_path in str(caught.value) and second in str(caught.value)
    # The public file name picks one out of several.
    assert checkpoints.resolve_checkpoint(str(tmp_path / "v1"), "resnet_v2_50") == second


def test_missing_checkpoint_names_the_path_and_how_to_download_it(tmp_path):
    path = str(tmp_path / "ckpts" / "inception_v1.ckpt")
    message = restore_error(path, INCEPTION_SHAPES, "inception_v1")
    assert path in message
    assert "download_checkpoints.py inception_v1 --dest %s" % (tmp_path / "ckpts") in message
    assert checkpoints.PUBLIC_CHECKPOINTS["inception_v1"].url in message

    with pytest.raises(CheckpointError, match="no checkpoint in folder") as caught:
        checkpoints.resolve_checkpoint(str(tmp_path), "densenet161")
    assert "drive.google.com" in str(caught.value)


def test_missing_and_misshaped_variables_are_named_with_both_shapes(tmp_path):
    path = str(tmp_path / "model.ckpt")
    save_inception(path, "V2")
    shapes = dict(INCEPTION_SHAPES)
    shapes["InceptionV1/Conv2d_1a_7x7/weights"] = [7, 7, 3, 32]
    shapes["InceptionV1/Mixed_3b/Branch_0/Conv2d_0a_1x1/weights"] = [1, 1, 192, 64]
    message = restore_error(path, shapes, "inception_v1")
    assert path in message
    assert "1 variable(s) missing" in message
    assert "InceptionV1/Mixed_3b/Branch_0/Conv2d_0a_1x1/weights" in message
    assert ("InceptionV1/Conv2d_1a_7x7/weights: graph [7, 7, 3, 32], "
            "checkpoint [7, 7, 3, 64]") in message
    assert "InceptionV1/Logits/Conv2d_0c_1x1/biases" not in message


def test_long_lists_of_missing_variables_are_cut_with_a_count(tmp_path):
    path = str(tmp_path / "model.ckpt")
    save_inception(path, "V2")
    shapes = {"InceptionV1/Extra_%02d/weights" % index: [1] for index in range(15)}
    message = restore_error(path, shapes)
    assert "15 variable(s) missing" in message
    assert "InceptionV1/Extra_09/weights" in message
    assert "InceptionV1/Extra_10/weights" not in message
    assert "... and 5 more" in message


def test_corrupt_checkpoint_is_a_checkpoint_error_naming_the_file(tmp_path):
    path = str(tmp_path / "inception_v1.ckpt")
    with open(path, "wb") as garbage:
        garbage.write(os.urandom(4096))
    assert path in restore_error(path, INCEPTION_SHAPES)
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        checkpoints.verify(str(tmp_path), "inception_v1")


def test_truncated_data_file_is_a_checkpoint_error_without_node_trace(tmp_path):
    path = str(tmp_path / "model.ckpt")
    save_inception(path, "V2")
    with open(path + ".data-00000-of-00001", "r+b") as data:
        data.truncate(100)
    message = restore_error(path, INCEPTION_SHAPES)
    assert "cannot restore from checkpoint %s" % path in message
    assert "RestoreV2" not in message


def test_unpack_and_verify_a_local_archive(tmp_path, inception_archive):
    archive, values = inception_archive
    dest = str(tmp_path / "dest")
    path = checkpoints.unpack(archive, dest, "inception_v1.ckpt")
    assert path == os.path.join(dest, "inception_v1.ckpt")
    assert sorted(os.listdir(dest)) == ["inception_v1.ckpt.data-00000-of-00001",
                                        "inception_v1.ckpt.index"]
    assert checkpoints.verify(dest, "inception_v1") == path
    assert checkpoints.checkpoint_variable_shapes(path) == {
        name: list(value.shape) for name, value in values.items()}


def test_verify_rejects_another_networks_checkpoint(tmp_path, inception_archive):
    archive, _ = inception_archive
    checkpoints.unpack(archive, str(tmp_path), "inception_v1.ckpt")
    os.rename(tmp_path / "inception_v1.ckpt.index", tmp_path / "resnet_v2_50.ckpt.index")
    os.rename(tmp_path / "inception_v1.ckpt.data-00000-of-00001",
              tmp_path / "resnet_v2_50.ckpt.data-00000-of-00001")
    with pytest.raises(CheckpointError, match="not the public resnet_v2_50") as caught:
        checkpoints.verify(str(tmp_path), "resnet_v2_50")
    assert "resnet_v2_50/conv1/weights: expected [7, 7, 3, 64], checkpoint has nothing" \
        in str(caught.value)


@pytest.mark.parametrize("evil_name", ["../evil", "/tmp/evil", "ok/../../evil"])
def test_unpack_refuses_members_outside_the_archive(tmp_path, evil_name):
    archive = str(tmp_path / "evil.tar.gz")
    with tarfile.open(archive, "w:gz") as tar:
        add_bytes(tar, "inception_v1.ckpt", b"x")
        add_bytes(tar, evil_name, b"x")
    dest = tmp_path / "dest"
    with pytest.raises(CheckpointError, match="refusing to unpack") as caught:
        checkpoints.unpack(archive, str(dest), "inception_v1.ckpt")
    assert evil_name in str(caught.value)
    assert not dest.exists() and not (tmp_path / "evil").exists()


def test_unpack_refuses_a_link_in_place_of_the_checkpoint(tmp_path):
    archive = str(tmp_path / "link.tar.gz")
    with tarfile.open(archive, "w:gz") as tar:
        link = tarfile.TarInfo("inception_v1.ckpt")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    with pytest.raises(CheckpointError, match="not a regular file"):
        checkpoints.unpack(archive, str(tmp_path / "dest"), "inception_v1.ckpt")
    assert not (tmp_path / "dest").exists()


def test_unpack_reports_a_missing_checkpoint_and_an_unreadable_archive(tmp_path,
                                                                      inception_archive):
    archive, _ = inception_archive
    with pytest.raises(CheckpointError, match="does not contain resnet_v2_50.ckpt"):
        checkpoints.unpack(archive, str(tmp_path), "resnet_v2_50.ckpt")
    not_archive = tmp_path / "broken.tar.gz"
    not_archive.write_bytes(b"<html>Google Drive virus scan warning</html>")
    with pytest.raises(CheckpointError, match="cannot unpack .*broken.tar.gz"):
        checkpoints.unpack(str(not_archive), str(tmp_path), "inception_v1.ckpt")


def test_google_drive_checkpoint_gives_manual_steps(tmp_path):
    with pytest.raises(CheckpointError) as caught:
        checkpoints.download("densenet161", str(tmp_path / "dest"))
    message = str(caught.value)
    assert "https://drive.google.com/file/d/0B_fUSpodN0t0NmZvTnZZa2plaHc/view" in message
    assert "tf-densenet161.tar.gz" in message
    assert "download_checkpoints.py densenet161 --archive" in message
    assert not (tmp_path / "dest").exists()


def test_fetch_downloads_unpacks_verifies_and_removes_the_archive(tmp_path, monkeypatch,
                                                                  inception_archive):
    archive, _ = inception_archive
    info = checkpoints.PUBLIC_CHECKPOINTS["inception_v1"]
    # A file:// URL runs the real urllib download without a network.
    monkeypatch.setitem(checkpoints.PUBLIC_CHECKPOINTS, "inception_v1",
                        info._replace(url="file://" + archive))
    dest = str(tmp_path / "dest")
    path = checkpoints.fetch("inception_v1", dest, progress=False)
    assert path == os.path.join(dest, "inception_v1.ckpt")
    assert sorted(os.listdir(dest)) == ["inception_v1.ckpt.data-00000-of-00001",
                                        "inception_v1.ckpt.index"]


def test_failed_download_leaves_no_partial_file(tmp_path, monkeypatch):
    info = checkpoints.PUBLIC_CHECKPOINTS["resnet_v2_50"]
    monkeypatch.setitem(checkpoints.PUBLIC_CHECKPOINTS, "resnet_v2_50",
                        info._replace(url="file://" + str(tmp_path / "nowhere.tar.gz")))
    with pytest.raises(CheckpointError, match="could not download") as caught:
        checkpoints.download("resnet_v2_50", str(tmp_path / "dest"), progress=False)
    assert "--archive PATH/TO/resnet_v2_50_2017_04_14.tar.gz" in str(caught.value)
    assert os.listdir(tmp_path / "dest") == []


def run_script(*args):
    return subprocess.run([sys.executable, SCRIPT] + list(args), capture_output=True,
                          text=True, timeout=120)


@pytest.mark.slow
def test_script_help_explains_every_option():
    result = run_script("--help")
    assert result.returncode == 0
    for option in ("NAME", "--dest", "--archive", "--list"):
        assert option in result.stdout


def load_script_main():
    spec = importlib.util.spec_from_file_location("download_checkpoints", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.mark.slow
def test_script_installs_an_archive(tmp_path, inception_archive):
    archive, _ = inception_archive
    dest = str(tmp_path / "dest")
    result = run_script("inception_v1", "--archive", archive, "--dest", dest)
    assert result.returncode == 0, result.stderr
    assert "inception_v1: ok" in result.stdout
    assert checkpoints.verify(dest, "inception_v1") == os.path.join(dest, "inception_v1.ckpt")


def test_script_goes_on_after_a_failure_and_lists_the_failures(tmp_path, capsys,
                                                               inception_archive):
    archive, _ = inception_archive
    checkpoints.unpack(archive, str(tmp_path), "inception_v1.ckpt")
    # The installed checkpoint is only checked, so no download is attempted.
    exit_code = load_script_main()(["no_such_net", "inception_v1", "--dest", str(tmp_path)])
    out, err = capsys.readouterr()
    assert exit_code == 1
    assert "inception_v1: ok" in out
    assert "unknown checkpoint 'no_such_net'; known checkpoints: densenet121, densenet161" in err
    assert "failed: no_such_net" in err


def test_script_rejects_archive_with_several_names(capsys):
    with pytest.raises(SystemExit) as exited:
        load_script_main()(["inception_v1", "resnet_v2_50", "--archive", "x.tar.gz"])
    assert exited.value.code != 0
    assert "exactly one NAME" in capsys.readouterr().err


def test_a_full_disk_while_unpacking_leaves_no_partial_file(tmp_path, inception_archive,
                                                            monkeypatch):
    archive, _ = inception_archive

    def fill_up(source, out):
        out.write(source.read(100))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoints.shutil, "copyfileobj", fill_up)
    dest = tmp_path / "dest"
    with pytest.raises(CheckpointError, match="cannot unpack .*No space left on device"):
        checkpoints.unpack(archive, str(dest), "inception_v1.ckpt")
    assert os.listdir(dest) == []


def test_list_says_downloaded_only_for_checkpoints_in_dest(tmp_path, capsys):
    assert load_script_main()(["--list", "--dest", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(checkpoints.PUBLIC_CHECKPOINTS)
    assert not [line for line in lines if "downloaded" in line]
    (tmp_path / "inception_v1.ckpt").write_bytes(b"a V1 checkpoint")
    assert load_script_main()(["--list", "--dest", str(tmp_path)]) == 0
    [downloaded] = [line for line in capsys.readouterr().out.splitlines()
                    if "downloaded" in line]
    assert downloaded.startswith("inception_v1 ") and \
        downloaded.endswith("(this script downloads it) (downloaded, in %s)" % tmp_path)
