from setuptools import find_packages, setup

setup(
    name='torchlight',
    version='2.0',
    description='Small helpers shared by the LST training scripts (argument parsing, class import).',
    packages=find_packages(),
    # An explicit root makes `pip install -e` write a plain .pth path entry: the default import hook would lose
    # to the repository's own torchlight/ folder (a namespace package) whenever Python runs from the repo root.
    package_dir={'': '.'},
    install_requires=['PyYAML'],
)
