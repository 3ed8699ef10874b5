"""The import contracts of pyproject.toml cover every d2lmini module (`make test-imports` runs
lint-imports on them): a new core module joins the framework-free list, a new adapter the
independence contract."""
import pathlib
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_every_d2lmini_module_is_in_a_contract():
    config = tomllib.loads((ROOT / 'pyproject.toml').read_text())['tool']['importlinter']
    contracts = {c['type']: c for c in config['contracts']}
    core = set(contracts['forbidden']['source_modules'])
    adapters = set(contracts['independence']['modules'])
    framework_only = {m for m in contracts['forbidden']['forbidden_modules']
                      if m.startswith('d2lmini.')} - adapters
    modules = {f'd2lmini.{path.stem}' for path in (ROOT / 'd2lmini').glob('*.py')
               if path.stem != '__init__'}
    assert modules == core | adapters | framework_only, (
        'each d2lmini module must be listed in pyproject.toml: in the framework-free core '
        '(forbidden source_modules) or as a framework module')
