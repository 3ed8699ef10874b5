"""A chapter notebook as a new user gets it: alone, outside the repository, with d2lmini installed
from a built wheel (no editable install, no repository on the path).

* PyTorch: a fresh Python 3.11 venv, `pip install torch==2.13.0 <wheel>[torch] ipykernel`, the notebook
  copied alone to a temporary folder and run end to end under nbclient (smoke budget). Its Colab
  install cell must find d2lmini and torch and say so in one line, without installing anything.
* MXNet on Python 3.12: the same with `.venv-mxnet312`, which `make setup` fills from the wheel
  and its `[mxnet]` extra (numpy 1.26 and setuptools there).
* MXNet on Python 3.13: its install cell stops with a message that says why and what to do.
* A failed install says in one line what failed and what the reader can do.
* The built wheel and sdist hold LICENSE; every notebook links its figures in the form Colab and
  GitHub show and asks Colab for a GPU if its framework's pip package can use one.

Slow (a venv and a PyTorch install): about a minute on 2 CPU cores.
"""
import glob
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile

import nbformat
import pytest
from nbclient import NotebookClient

from book.tools import figures
from d2lmini import frameworks

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHAPTER = ROOT / 'book' / 'googlenet'
FRAMEWORKS = frameworks.IDS
MODULES = {'pytorch': ['torch'], 'tensorflow': ['tensorflow'], 'jax': ['jax', 'flax', 'optax'],
           'mxnet': ['mxnet']}
VENV_MX312 = ROOT / '.venv-mxnet312'
# Offline here: pip finds torch and the rest in the local wheel cache or fails (never downloads GBs).
PIP = ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check']


def notebook(fw):
    return CHAPTER / f'googlenet_{fw}.ipynb'


def install_cell(nb):
    cells = [c for c in nb.cells if 'colab-install' in c.metadata.get('tags', [])]
    assert len(cells) == 1
    return cells[0]


def find_python(version):
    """An interpreter of this version: pythonX.Y on the PATH, else one from pyenv."""
    candidates = [shutil.which(f'python{version}')]
    root = subprocess.run(['pyenv', 'root'], capture_output=True, text=True).stdout.strip() \
        if shutil.which('pyenv') else ''
    candidates += sorted(glob.glob(f'{root}/versions/{version}*/bin/python{version}')) if root else []
    for python in candidates:
        if python and subprocess.run([python, '-c', ''], capture_output=True).returncode == 0:
            return python
    pytest.fail(f'Python {version} not found (neither python{version} on the PATH nor in pyenv): '
                f'install it to run this test.', pytrace=False)


@pytest.fixture(scope='module')
def dist(tmp_path_factory):
    """The wheel and sdist of d2lmini, built from this checkout."""
    out = tmp_path_factory.mktemp('dist')
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--quiet', '--disable-pip-version-check',
                    '--no-deps', '-w', str(out), str(ROOT)], check=True, cwd=out)
    subprocess.run([sys.executable, '-c', 'import sys, setuptools.build_meta as b; b.build_sdist(sys.argv[1])',
                    str(out)], check=True, cwd=ROOT, capture_output=True)
    shutil.rmtree(ROOT / 'build', ignore_errors=True)         # setuptools' leftovers
    for leftover in ROOT.glob('*.egg-info'):
        shutil.rmtree(leftover, ignore_errors=True)
    wheels, sdists = list(out.glob('d2lmini-*.whl')), list(out.glob('d2lmini-*.tar.gz'))
    assert len(wheels) == 1 and len(sdists) == 1, os.listdir(out)
    return wheels[0], sdists[0]


def run_alone(fw, python, tmp_path, monkeypatch):
    """Copy the notebook alone into tmp_path and run it with `python` as its kernel.

    Returns the executed notebook and the d2lmini module path the kernel imported."""
    work = tmp_path / 'work'
    work.mkdir()
    shutil.copy(notebook(fw), work)
    # A kernel spec of our own for this interpreter, found through JUPYTER_PATH.
    spec = tmp_path / 'jupyter' / 'kernels' / 'standalone'
    spec.mkdir(parents=True)
    (spec / 'kernel.json').write_text(json.dumps({
        'argv': [str(python), '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
        'display_name': 'standalone', 'language': 'python'}))
    monkeypatch.setenv('JUPYTER_PATH', str(tmp_path / 'jupyter'))
    monkeypatch.setenv('D2LMINI_BUDGET', 'smoke')
    monkeypatch.delenv('PYTHONPATH', raising=False)
    nb = nbformat.read(str(work / notebook(fw).name), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell('import d2lmini; print(d2lmini.__file__)'))
    NotebookClient(nb, kernel_name='standalone', timeout=600,
                   resources={'metadata': {'path': str(work)}}).execute()
    return nb, nb.cells[-1].outputs[0]['text'].strip()


def stdout(cell):
    return ''.join(o.get('text', '') for o in cell.outputs if o.get('name') == 'stdout')


def check_ran(nb, fw, d2lmini_file, venv):
    line = stdout(install_cell(nb))
    names = ['d2lmini'] + MODULES[fw]
    assert line.splitlines() == [f'{" and ".join(names)} are installed already: nothing to install.']
    assert pathlib.Path(d2lmini_file).is_relative_to(venv), d2lmini_file    # the wheel, not the checkout
    training = [c for c in nb.cells if 'train' in c.metadata.get('tags', [])]
    assert "with budget 'smoke'" in stdout(training[0])
    errors = [o for c in nb.cells if c.cell_type == 'code' for o in c.outputs if o.output_type == 'error']
    assert errors == []


def test_wheel_and_sdist_hold_the_license(dist):
    wheel, sdist = dist
    license_text = (ROOT / 'LICENSE').read_text()
    assert 'Apache License' in license_text and 'Version 2.0' in license_text
    with zipfile.ZipFile(wheel) as z:
        found = [n for n in z.namelist() if n.endswith('/LICENSE') and '.dist-info/' in n]
        assert found and z.read(found[0]).decode() == license_text
    with tarfile.open(sdist) as t:
        found = [n for n in t.getnames() if n.count('/') == 1 and n.endswith('/LICENSE')]
        assert found and t.extractfile(found[0]).read().decode() == license_text


def test_pytorch_notebook_alone_with_d2lmini_from_the_wheel(dist, tmp_path, monkeypatch):
    venv = tmp_path / 'venv'
    # .venv's own base interpreter: the Python 3.11 the project is pinned and tested on
    subprocess.run([sys._base_executable, '-m', 'venv', str(venv)], check=True)
    python = venv / 'bin' / 'python'
    # the [torch] extra as a user installs it, with torch pinned to the CPU build on local disk
    subprocess.run([str(python), *PIP, 'torch==2.13.0', f'{dist[0]}[torch]', 'ipykernel'], check=True)
    nb, d2lmini_file = run_alone('pytorch', python, tmp_path, monkeypatch)
    check_ran(nb, 'pytorch', d2lmini_file, venv)


def test_mxnet_notebook_alone_on_python_312(tmp_path, monkeypatch):
    python = VENV_MX312 / 'bin' / 'python'
    assert python.exists(), f'{VENV_MX312} is missing: run `make setup`'
    versions = subprocess.run([str(python), '-c', 'import sys, numpy; print(sys.version_info[:2] >= (3, 12), '
                               'numpy.__version__)'], capture_output=True, text=True, check=True).stdout.split()
    assert versions[0] == 'True' and versions[1].startswith('1.26'), versions
    nb, d2lmini_file = run_alone('mxnet', python, tmp_path, monkeypatch)
    check_ran(nb, 'mxnet', d2lmini_file, VENV_MX312)


def test_mxnet_install_cell_explains_python_313(tmp_path):
    python = find_python('3.13')
    source = install_cell(nbformat.read(notebook('mxnet'), as_version=4)).source
    # A bare 3.13 (no d2lmini, no mxnet), isolated from site-packages: pip must not even start.
    result = subprocess.run([python, '-I', '-S', '-c', source], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith('RuntimeError: MXNet cannot be installed on Python 3.13')
    for hint in ('numpy older than 2', 'Python 3.11 or 3.12', 'Runtime > Change runtime type'):
        assert hint in message
    assert result.stdout == ''                                  # nothing installed, nothing printed


@pytest.mark.parametrize('fw', ('pytorch', 'jax'))
def test_a_failed_install_says_what_failed_and_what_to_do(fw, tmp_path):
    source = install_cell(nbformat.read(notebook(fw), as_version=4)).source
    # Isolated (-I -S): no d2lmini, and no pip either, so the install fails at once, offline.
    result = subprocess.run([sys.executable, '-I', '-S', '-c', source], capture_output=True,
                            text=True, cwd=tmp_path)
    assert result.returncode != 0 and result.stdout == ''
    message = result.stderr.strip().splitlines()[-1]
    extra = frameworks.get(fw).extra
    assert message.startswith(f'RuntimeError: pip could not install d2lmini[{extra}] @ '
                              'git+https://github.com/d2lmini/book@v')
    for hint in ('its message is above', 'run this cell again',
                 f'pip install "d2lmini[{extra}] @ git+https://github.com/d2lmini/book"'):
        assert hint in message


@pytest.mark.parametrize('fw', FRAMEWORKS)
def test_install_cell_checks_the_framework_and_pins_a_release(fw):
    nb = nbformat.read(notebook(fw), as_version=4)
    source = install_cell(nb).source
    version = tomllib.loads((ROOT / 'pyproject.toml').read_text())['project']['version']
    extra = frameworks.get(fw).extra
    specs = re.findall(r"'(d2lmini\[[^']+)'", source)
    assert specs == [f'd2lmini[{extra}] @ git+https://github.com/d2lmini/book@v{version}']
    checked = re.search(r'for name in \(([^)]*)\)', source).group(1)
    assert [n.strip(" '") for n in checked.split(',')] == ['d2lmini'] + MODULES[fw]
    assert len(re.findall(r'^\s*print\(', source, re.MULTILINE)) == 2     # one line either way


@pytest.mark.parametrize('fw', FRAMEWORKS)
def test_notebook_asks_colab_for_a_gpu_it_can_use_and_links_its_figures(fw):
    nb = nbformat.read(notebook(fw), as_version=4)
    if frameworks.get(fw).pip_gpu:
        assert nb.metadata.get('accelerator') == 'GPU'
        assert nb.metadata.get('colab', {}).get('gpuType')
    else:       # a GPU its framework cannot use would only cost the reader's Colab quota
        assert 'accelerator' not in nb.metadata and 'gpuType' not in nb.metadata.get('colab', {})
    images, captions = [], []
    for cell in nb.cells:
        if cell.cell_type != 'markdown':
            continue
        images += [m.group(2) for m in figures.IMAGE.finditer(cell.source)]
        captions += re.findall(r'^\*Figure (\d+):', cell.source, re.MULTILINE)
    assert len(images) >= 2
    # each a PNG by its address in the repository, rendered from the current SVG (figures.py)
    assert figures.problems(notebook(fw)) == []
    # numbered in order, one caption per figure, and each one referred to by number in the prose
    assert captions == [str(n) for n in range(1, len(images) + 1)]
    prose = '\n'.join(re.sub(r'^\*Figure \d+:.*$', '', c.source, flags=re.MULTILINE)
                      for c in nb.cells if c.cell_type == 'markdown')
    for n in captions:
        assert re.search(rf'\bFigure {n}\b', prose), f'Figure {n} is never referred to'
