"""Packages of the wheel (the rest of the metadata is in pyproject.toml).

The miniature's files live in assets/mini/ of the repository (scripts/train_mini.py writes them there); the wheel
installs them as the data-only package `seats_core._assets.mini`, which seats_core/models/qwen2_5_omni/mini.py finds first.
Everything under seats_core/ and app/ that find_packages sees is included, so new subpackages need no edit here.
"""

from setuptools import find_packages, setup

ASSETS = "seats_core._assets"
MINI_PACKAGE = f"{ASSETS}.mini"

setup(
    packages=find_packages(include=["seats_core*", "app*"]) + [MINI_PACKAGE],
    package_dir={ASSETS: "assets"},
    package_data={MINI_PACKAGE: ["*.json", "*.jinja", "*.safetensors"]},
)
