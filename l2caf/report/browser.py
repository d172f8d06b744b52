"""A report page as a browser shows it: headless Chromium's screenshot of it, and its DOM
after its script ran (for the browser test and the page-load benchmark).

Chromium's own command line does both, so nothing beyond the standard library is needed:
--screenshot writes a PNG, --dump-dom prints the DOM once the page has loaded, and
--virtual-time-budget lets the page run (scripts, lazily loaded images) for that many
milliseconds of virtual time first. The page records what a test needs in its DOM (the
order of the cards, how many images loaded, when it was drawn), so no DevTools client (a
websocket and its protocol, written by hand) is needed to ask it.
"""
import os
import shutil
import subprocess
import tempfile
import urllib.parse

from l2caf.errors import ConfigError

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Headless without a sandbox (containers), a GPU or any network of its own; nothing kept
# between runs (each gets a fresh profile folder).
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars")


def find_chromium() -> str:
    """The path of a Chromium (or Chrome) binary: $L2CAF_CHROMIUM, else the first of
    CANDIDATES on the PATH; ConfigError saying how to install one."""
    named = os.environ.get("L2CAF_CHROMIUM")
    if named:
        if not shutil.which(named):
            raise ConfigError("L2CAF_CHROMIUM=%s is not an executable" % named)
        return shutil.which(named)
    for name in CANDIDATES:
        if shutil.which(name):
            return shutil.which(name)
    raise ConfigError("no Chromium found (%s); install it, e.g. apt-get install chromium, or "
                      "name the binary in L2CAF_CHROMIUM" % ", ".join(CANDIDATES))


def file_url(path: str, fragment: str = "") -> str:
    """The file:// URL of a local file, with an optional #fragment."""
    url = "file://" + urllib.parse.quote(os.path.abspath(path))
    return url + ("#" + fragment if fragment else "")


def run_chromium(url: str, options: list, window: tuple = (1280, 2000), budget_ms: int = 5000,
                 timeout: float = 120) -> str:
    """Chromium's stdout for url with options (e.g. ['--dump-dom']), in a window of
    (width, height) pixels, after budget_ms of virtual time; RuntimeError when it fails."""
    with tempfile.TemporaryDirectory(prefix="l2caf-chromium-") as profile:
        command = [find_chromium()] + list(FLAGS) + [
            "--user-data-dir=%s" % profile, "--window-size=%d,%d" % window,
            "--virtual-time-budget=%d" % budget_ms] + list(options) + [url]
        finished = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if finished.returncode != 0:
        raise RuntimeError("chromium exited with status %d: %s"
                           % (finished.returncode, finished.stderr[-2000:]))
    return finished.stdout


def dump_dom(url: str, window: tuple = (1280, 2000), budget_ms: int = 5000) -> str:
    """The page's DOM as HTML once it has loaded and run for budget_ms."""
    return run_chromium(url, ["--dump-dom"], window, budget_ms)


def screenshot(url: str, path: str, window: tuple = (1280, 2000), budget_ms: int = 5000) \
        -> str:
    """Writes a PNG of the page's window to path; returns path."""
    run_chromium(url, ["--screenshot=%s" % os.path.abspath(path)], window, budget_ms)
    if not os.path.isfile(path):
        raise RuntimeError("chromium wrote no screenshot to %s" % path)
    return path
