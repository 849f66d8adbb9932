from setuptools import find_packages, setup

setup(
    name='torchlight',
    version='2.0',
    description='Small helpers shared by the LST training scripts (argument parsing, class import).',
    packages=find_packages(),
    install_requires=['PyYAML'],
)
