"""The tests, a package, so that a top-level `tests` package installed by another library
(tf-keras-vis installs one) cannot shadow them."""
