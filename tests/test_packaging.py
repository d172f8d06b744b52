"""The tests live next to other libraries: a top-level `tests` package installed by another
one (tf-keras-vis's wheel has one) does not shadow ours (conftest.py and test_images.py
import tests.helpers)."""
import os
import subprocess
import sys

from tests.helpers import REPO_ROOT


def test_an_installed_top_level_tests_package_does_not_shadow_ours(tmp_path):
    fake = tmp_path / "site" / "tests"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('the fake tests package was imported')\n")
    environment = dict(os.environ, PYTHONPATH=str(tmp_path / "site"))
    finished = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/test_data.py", "tests/test_images.py"], cwd=REPO_ROOT, env=environment, capture_output=True,
        text=True, timeout=300)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert " passed" in finished.stdout and "error" not in finished.stdout
