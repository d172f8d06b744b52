"""Find, check, restore, save and download the slim checkpoints the networks load.

A checkpoint is named by its path as TensorFlow names it: `X.ckpt` is either a V1
checkpoint (one file `X.ckpt`, as in the 2016/2017 TF-slim archives) or a V2 one
(`X.ckpt.index` plus `X.ckpt.data-00000-of-00001`, as in pudae's DenseNet archive and
everything this project saves). Both restore the same way.

Restoring checks the checkpoint against the graph first, so a wrong or truncated file
fails with the names and shapes at fault instead of a TensorFlow stack trace. Only the
variables given are restored: the attention filters and their gates are not in any
public checkpoint.

TensorFlow is imported only by the functions that read or write a checkpoint, so that
listing and finding checkpoints (scripts/download_checkpoints.py --list) starts at once.
"""
import collections
import os
import re
import shutil
import tarfile
import urllib.request
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence

from tqdm import tqdm

from l2caf import networks
from l2caf.errors import CheckpointError
from l2caf.files import sha256

if TYPE_CHECKING:  # (TensorFlow: only once a checkpoint is read or written)
    from nets.tf_slim_compat import tf

DOWNLOAD_SCRIPT = "scripts/download_checkpoints.py"
DEFAULT_DEST = "checkpoints"
MAX_LISTED = 10

PublicCheckpoint = collections.namedtuple(
    "PublicCheckpoint", ["file_name", "url", "archive_name", "browser_only", "known_variables"])
PublicCheckpoint.__doc__ = """Where a public checkpoint comes from and how to recognise it.

file_name: checkpoint path inside the archive and the destination folder (V1 file or V2
prefix). url: where the archive is published. archive_name: the .tar.gz to download.
browser_only: the url is a page a script cannot fetch (Google Drive), so the user
downloads the archive in a browser and hands it over with --archive. known_variables:
{name: shape} a few variables the genuine checkpoint holds, checked after unpacking."""

# A few variables (and shapes) each genuine public checkpoint holds; the logits biases tell
# the 1001-class slim checkpoints from the 1000-class DenseNets.
_KNOWN_VARIABLES = {
    "inception_v1": {"InceptionV1/Conv2d_1a_7x7/weights": [7, 7, 3, 64],
                     "InceptionV1/Logits/Conv2d_0c_1x1/biases": [1001]},
    "resnet_v2_50": {"resnet_v2_50/conv1/weights": [7, 7, 3, 64],
                     "resnet_v2_50/logits/biases": [1001]},
    "resnet_v2_101": {"resnet_v2_101/conv1/weights": [7, 7, 3, 64],
                      "resnet_v2_101/logits/biases": [1001]},
    "resnet_v2_152": {"resnet_v2_152/conv1/weights": [7, 7, 3, 64],
                      "resnet_v2_152/logits/biases": [1001]},
    "densenet121": {"densenet121/conv1/weights": [7, 7, 3, 64],
                    "densenet121/logits/biases": [1000]},
    "densenet161": {"densenet161/conv1/weights": [7, 7, 3, 96],
                    "densenet161/logits/biases": [1000]},
    "densenet169": {"densenet169/conv1/weights": [7, 7, 3, 64],
                    "densenet169/logits/biases": [1000]},
}


def _public_checkpoint(name):
    """File name and link from l2caf.networks, the one place that lists them."""
    network = networks.get_network(name)
    browser_only = "drive.google.com" in network.url
    archive_name = "tf-%s.tar.gz" % name if browser_only else network.url.rsplit("/", 1)[-1]
    return PublicCheckpoint(network.checkpoint_file, network.url, archive_name, browser_only,
                            _KNOWN_VARIABLES[name])


PUBLIC_CHECKPOINTS = {name: _public_checkpoint(name) for name in _KNOWN_VARIABLES}

# Users often pass one of a V2 checkpoint's files instead of its prefix.
_V2_FILE_SUFFIX = re.compile(r"\.(index|meta|data-\d{5}-of-\d{5})$")


def public_checkpoint(name: str) -> PublicCheckpoint:
    """The `PublicCheckpoint` called `name`; CheckpointError naming the known ones if none."""
    if name not in PUBLIC_CHECKPOINTS:
        raise CheckpointError("unknown checkpoint %r; known checkpoints: %s"
                              % (name, ", ".join(sorted(PUBLIC_CHECKPOINTS))))
    return PUBLIC_CHECKPOINTS[name]


def checkpoint_exists(path: str) -> bool:
    """True when `path` is a V1 checkpoint file or the prefix of a V2 checkpoint."""
    return os.path.isfile(path) or os.path.isfile(path + ".index")


def _checkpoints_in(folder):
    """Checkpoint paths in `folder`: V2 prefixes and V1 `.ckpt` files, sorted."""
    found = set()
    for entry in os.listdir(folder):
        path = os.path.join(folder, entry)
        if entry.endswith(".index"):
            found.add(path[:-len(".index")])
        elif entry.endswith(".ckpt") and os.path.isfile(path):
            found.add(path)
    return sorted(found)


def _listing(lines):
    """Up to MAX_LISTED items on one line, then how many more were left out."""
    shown = ", ".join(lines[:MAX_LISTED])
    return shown + (" ... and %d more" % (len(lines) - MAX_LISTED)
                    if len(lines) > MAX_LISTED else "")


def _how_to_get(path, network_name):
    """Download instructions for a missing public checkpoint, '' for other networks."""
    if network_name not in PUBLIC_CHECKPOINTS:
        return ""
    info = PUBLIC_CHECKPOINTS[network_name]
    path = os.path.abspath(path)
    if os.path.isdir(path):
        dest = path
    elif os.path.basename(path) == info.file_name:
        dest = os.path.dirname(path)
    else:
        dest = os.path.abspath(DEFAULT_DEST)
    target = os.path.join(dest, info.file_name)
    return ("; the public %s checkpoint comes from %s: get it with (from the repository "
            "root) python %s %s --dest %s, which puts it at %s%s"
            % (network_name, info.url, DOWNLOAD_SCRIPT, network_name, dest, target,
               "" if target == path else "; then use that path"))


def resolve_checkpoint(path: str, network_name: Optional[str] = None) -> str:
    """The checkpoint path TensorFlow reads for `path`.

    `path` may be a V1 file, a V2 prefix, one of a V2 checkpoint's files, or a folder
    holding exactly one checkpoint (or several, one of which has the public file name of
    `network_name`). Raises CheckpointError naming `path`, with download instructions
    when `network_name` is a public checkpoint.
    """
    prefix = _V2_FILE_SUFFIX.sub("", path)
    if checkpoint_exists(prefix):
        return prefix
    if not os.path.isdir(path):
        raise CheckpointError("no checkpoint at %s (neither a file nor %s.index)%s"
                              % (path, path, _how_to_get(path, network_name)))
    found = _checkpoints_in(path)
    if network_name in PUBLIC_CHECKPOINTS:
        public_path = os.path.join(path, PUBLIC_CHECKPOINTS[network_name].file_name)
        if public_path in found:
            return public_path
    if len(found) == 1:
        return found[0]
    if not found:
        raise CheckpointError("no checkpoint in folder %s%s"
                              % (path, _how_to_get(path, network_name)))
    raise CheckpointError("folder %s holds %d checkpoints, pass one of them: %s"
                          % (path, len(found), _listing(found)))


def _op_error_reason(error):
    """What a TensorFlow op error says went wrong, without its node trace."""
    lines = [line.strip() for line in error.message.splitlines() if line.strip()]
    reasons = [line for line in lines if not line.startswith("[[")]
    return reasons[-1] if reasons else type(error).__name__


def checkpoint_variable_shapes(path: str) -> Dict[str, List[int]]:
    """{variable name: shape list} of the checkpoint at `path` (V1 file or V2 prefix)."""
    from nets.tf_slim_compat import tf
    try:
        reader = tf.compat.v1.train.NewCheckpointReader(path)
    except tf.errors.OpError as error:
        raise CheckpointError("cannot read checkpoint %s (corrupt, truncated or not a "
                              "checkpoint): %s" % (path, _op_error_reason(error))) from None
    return reader.get_variable_to_shape_map()


def fingerprint(path: str, network_name: Optional[str] = None) -> str:
    """The SHA-256 of the checkpoint at `path` (see resolve_checkpoint): of the V1 file, or
    of a V2 checkpoint's index, which holds a checksum of every tensor. Equal for equal
    weights wherever the files lie."""
    path = resolve_checkpoint(path, network_name)
    return sha256(path + ".index" if os.path.isfile(path + ".index") else path)


def _mismatch_report(checkpoint_shapes, variables):
    """Lines describing the variables absent from, or shaped differently in, a checkpoint."""
    missing, misshaped = [], []
    for variable in variables:
        name = variable.op.name
        graph_shape = variable.shape.as_list()
        if name not in checkpoint_shapes:
            missing.append(name)
        elif checkpoint_shapes[name] != graph_shape:
            misshaped.append("%s: graph %s, checkpoint %s"
                             % (name, graph_shape, checkpoint_shapes[name]))
    report = []
    if missing:
        report.append("%d variable(s) missing from the checkpoint: %s"
                      % (len(missing), _listing(missing)))
    if misshaped:
        report.append("%d variable(s) with a different shape: %s"
                      % (len(misshaped), _listing(misshaped)))
    return report


def restore_variables(session: "tf.compat.v1.Session", checkpoint_path: str,
                      variables: Sequence["tf.Variable"], network_name: Optional[str] = None
                      ) -> str:
    """Restore `variables` (the network's own, no filters or gates) from a checkpoint into
    `session`.

    Every variable must be in the checkpoint under its op name with the same shape;
    otherwise CheckpointError lists the missing and mis-shaped ones. Variables not
    given are left as they are. Returns the checkpoint path that was read.
    """
    from nets.tf_slim_compat import tf
    path = resolve_checkpoint(checkpoint_path, network_name)
    checkpoint_shapes = checkpoint_variable_shapes(path)
    report = _mismatch_report(checkpoint_shapes, variables)
    if report:
        scopes = sorted({name.split("/")[0] for name in checkpoint_shapes})
        network = " (network %s)" % network_name if network_name else ""
        raise CheckpointError(
            "checkpoint %s does not match the graph%s: %s; the checkpoint holds %d "
            "variables, under: %s"
            % (path, network, "; ".join(report), len(checkpoint_shapes),
               ", ".join(scopes[:MAX_LISTED])))
    try:
        with session.graph.as_default():
            tf.compat.v1.train.Saver(var_list=list(variables)).restore(session, path)
    except tf.errors.OpError as error:
        raise CheckpointError("cannot restore from checkpoint %s (corrupt or truncated "
                              "data): %s" % (path, _op_error_reason(error))) from None
    return path


def save_variables(session: "tf.compat.v1.Session", path: str,
                   variables: Sequence["tf.Variable"]) -> str:
    """Write `variables` (their values in `session`) to a V2 checkpoint at prefix `path`,
    named by their op names.

    The result restores like a public slim checkpoint. Returns the prefix written.
    """
    from nets.tf_slim_compat import tf
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with session.graph.as_default():
        saver = tf.compat.v1.train.Saver(var_list=list(variables),
                                         write_version=tf.compat.v1.train.SaverDef.V2)
        return saver.save(session, path, write_meta_graph=False, write_state=False)


def manual_download_steps(name: str, dest_dir: str = DEFAULT_DEST) -> str:
    """Step-by-step instructions to download checkpoint `name` by hand and install it."""
    info = public_checkpoint(name)
    if info.browser_only:
        get_archive = ("  1. Open %s in a web browser.\n"
                       "  2. Download the file %s there (Google Drive asks to confirm the "
                       "download of a large file).\n" % (info.url, info.archive_name))
    else:
        get_archive = ("  1. Download %s\n"
                       "     (with a web browser, wget or curl, on a machine with access).\n"
                       "  2. Copy %s to this machine.\n" % (info.url, info.archive_name))
    return ("To get the %s checkpoint by hand:\n%s"
            "  3. Unpack and check it with:\n"
            "     python %s %s --archive PATH/TO/%s --dest %s"
            % (name, get_archive, DOWNLOAD_SCRIPT, name, info.archive_name, dest_dir))


def download(name: str, dest_dir: str, progress: bool = True) -> str:
    """Download the archive of public checkpoint `name` into `dest_dir`; returns its path.

    The bytes go to a `.part` file renamed once complete, so an interrupted download
    never looks finished. Browser-only sources raise CheckpointError with the manual steps.
    """
    info = public_checkpoint(name)
    if info.browser_only:
        raise CheckpointError("%s is published on a page a script cannot download from.\n%s"
                              % (name, manual_download_steps(name, dest_dir)))
    os.makedirs(dest_dir, exist_ok=True)
    archive_path = os.path.join(dest_dir, info.archive_name)
    partial_path = archive_path + ".part"
    try:
        with urllib.request.urlopen(info.url, timeout=60) as response, \
                open(partial_path, "wb") as partial:
            size = response.headers.get("Content-Length")
            with tqdm(total=int(size) if size else None, unit="B", unit_scale=True,
                      desc=info.archive_name, disable=not progress) as bar:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    partial.write(chunk)
                    bar.update(len(chunk))
    except BaseException as error:  # URLError, socket timeouts, a full disk, Ctrl-C
        if os.path.exists(partial_path):
            os.remove(partial_path)
        if not isinstance(error, OSError):
            raise
        raise CheckpointError("could not download %s: %s\n%s"
                              % (info.url, getattr(error, "reason", error),
                                 manual_download_steps(name, dest_dir))) from None
    os.replace(partial_path, archive_path)
    return archive_path


def _is_checkpoint_file(file_name, checkpoint_name):
    """True for a V1 checkpoint file or one of the V2 files of checkpoint `checkpoint_name`."""
    return file_name == checkpoint_name or file_name.startswith(checkpoint_name + ".")


def unpack(archive_path: str, dest_dir: str, expected_file: str) -> str:
    """Extract checkpoint `expected_file` (its V1 file or V2 files) from a tar archive.

    The checkpoint's files land directly in `dest_dir`, wherever they sit in the archive;
    other members are skipped. An archive with a member outside its own root (absolute
    path, '..') or a link in place of a checkpoint file is refused before anything is
    written. Returns the checkpoint path in `dest_dir`.
    """
    try:
        with tarfile.open(archive_path, "r:*") as archive:
            members = archive.getmembers()
            for member in members:
                if member.name.startswith("/") or ".." in member.name.split("/"):
                    raise CheckpointError(
                        "refusing to unpack %s: member %r points outside the archive"
                        % (archive_path, member.name))
            wanted = [member for member in members
                      if _is_checkpoint_file(os.path.basename(member.name), expected_file)]
            if not wanted:
                raise CheckpointError("archive %s does not contain %s; it holds: %s"
                                      % (archive_path, expected_file,
                                         _listing([member.name for member in members])))
            for member in wanted:
                if not member.isfile():
                    raise CheckpointError("refusing to unpack %s: %r is not a regular file"
                                          % (archive_path, member.name))
            os.makedirs(dest_dir, exist_ok=True)
            for member in wanted:
                target = os.path.join(dest_dir, os.path.basename(member.name))
                try:
                    with archive.extractfile(member) as source, \
                            open(target + ".part", "wb") as out:
                        shutil.copyfileobj(source, out)
                    os.replace(target + ".part", target)
                except BaseException:  # a full disk, a truncated archive, Ctrl-C: no .part
                    if os.path.exists(target + ".part"):
                        os.remove(target + ".part")
                    raise
    except (tarfile.TarError, EOFError, OSError) as error:
        raise CheckpointError("cannot unpack %s: %s" % (archive_path, error)) from None
    return os.path.join(dest_dir, expected_file)


def verify(dest_dir: str, name: str) -> str:
    """Check that `dest_dir` holds a readable public checkpoint `name`; returns its path."""
    info = public_checkpoint(name)
    path = os.path.join(dest_dir, info.file_name)
    if not checkpoint_exists(path):
        raise CheckpointError("no checkpoint at %s (expected the file, or %s.index and "
                              "its .data files)" % (path, path))
    checkpoint_shapes = checkpoint_variable_shapes(path)
    wrong = ["%s: expected %s, checkpoint has %s"
             % (variable, shape, checkpoint_shapes.get(variable, "nothing"))
             for variable, shape in sorted(info.known_variables.items())
             if checkpoint_shapes.get(variable) != shape]
    if wrong:
        raise CheckpointError("%s is not the public %s checkpoint: %s"
                              % (path, name, _listing(wrong)))
    return path


def fetch(name: str, dest_dir: str = DEFAULT_DEST, archive_path: Optional[str] = None,
          progress: bool = True) -> str:
    """Install public checkpoint `name` in `dest_dir` and check it; returns its path.

    With `archive_path`, unpack that (manually downloaded) archive; otherwise download
    the archive, unpack it and delete it. A checkpoint already in `dest_dir` is only
    checked, not downloaded again.
    """
    info = public_checkpoint(name)
    if archive_path is None:
        if checkpoint_exists(os.path.join(dest_dir, info.file_name)):
            return verify(dest_dir, name)
        downloaded = download(name, dest_dir, progress)
        unpack(downloaded, dest_dir, info.file_name)
        os.remove(downloaded)
    else:
        unpack(archive_path, dest_dir, info.file_name)
    return verify(dest_dir, name)
