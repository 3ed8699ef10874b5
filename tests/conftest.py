"""Shared pytest set-up: `--framework` picks which framework environments this run tests.

Each framework is tested in its own virtual environment (MXNet needs an old numpy); by default
a run tests the frameworks of the environment running it (d2lmini.frameworks says which).
"""
import pathlib
import sys

import pytest

from d2lmini.frameworks import FRAMEWORKS, IDS

HERE_VENV = pathlib.Path(sys.prefix).name


def pytest_addoption(parser):
    parser.addoption('--framework', default=','.join(fw.id for fw in FRAMEWORKS if fw.venv == HERE_VENV),
                     help='comma-separated frameworks to test (default: those of this environment, '
                          '%(default)s)')


def selected_frameworks(config):
    names = [n.strip() for n in config.getoption('--framework').split(',') if n.strip()]
    unknown = set(names) - set(IDS)
    if unknown or not names:
        raise pytest.UsageError(f'unknown framework(s) {sorted(unknown)} or none (this environment, '
                                f'{sys.prefix}, runs none); choose with --framework from {IDS}')
    return names


def pytest_generate_tests(metafunc):
    if 'framework' in metafunc.fixturenames:
        metafunc.parametrize('framework', selected_frameworks(metafunc.config))


def pytest_ignore_collect(collection_path, config):
    # MXNet-only test files are collected only in the run that tests MXNet.
    if collection_path.name.startswith('test_mxnet_'):
        return 'mxnet' not in selected_frameworks(config)
    return None
