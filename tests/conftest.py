"""Shared pytest set-up: `--framework` picks which framework environments this run tests.

Each framework is tested in its own virtual environment (MXNet needs an old numpy), so the
Makefile runs pytest once per environment and names the frameworks it has.
"""
import pytest

FRAMEWORKS = ('pytorch', 'tensorflow', 'jax', 'mxnet')


def pytest_addoption(parser):
    parser.addoption('--framework', default='pytorch,tensorflow,jax',
                     help='comma-separated frameworks to test (default: %(default)s)')


def selected_frameworks(config):
    names = [n.strip() for n in config.getoption('--framework').split(',') if n.strip()]
    unknown = set(names) - set(FRAMEWORKS)
    if unknown:
        raise pytest.UsageError(f'unknown framework(s) {sorted(unknown)}; choose from {FRAMEWORKS}')
    return names


def pytest_generate_tests(metafunc):
    if 'framework' in metafunc.fixturenames:
        metafunc.parametrize('framework', selected_frameworks(metafunc.config))


def pytest_ignore_collect(collection_path, config):
    # MXNet-only test files are collected only in the run that tests MXNet.
    if collection_path.name.startswith('test_mxnet_'):
        return 'mxnet' not in selected_frameworks(config)
    return None
