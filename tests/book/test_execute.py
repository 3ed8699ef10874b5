"""book/tools/execute.py with the plain python3 kernel: outputs, environment, error messages,
Ctrl-C and SIGTERM."""
import signal

import nbformat
import pytest

from book.tools import execute


def notebook(*sources, kernel='python3'):
    nb = nbformat.v4.new_notebook()
    nb.metadata = {'kernelspec': {'name': kernel, 'display_name': 'Python 3', 'language': 'python'}}
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    return nb


def write(tmp_path, nb, name='chapter_pytorch.ipynb'):
    path = tmp_path / 'book' / 'chapter' / name
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def test_runs_in_the_notebook_folder_with_the_environment_and_leaves_the_source_alone(tmp_path, monkeypatch):
    monkeypatch.setenv('D2LMINI_BUDGET', 'smoke')
    source = write(tmp_path, notebook("import os; print(os.environ['D2LMINI_BUDGET'])",
                                      "print(os.path.basename(os.getcwd()))"))
    before = source.read_bytes()
    target = tmp_path / '_build' / 'executed' / 'chapter_pytorch.ipynb'
    seconds = execute.execute(source, target, cell_timeout=60)
    assert seconds > 0
    assert source.read_bytes() == before
    nb = nbformat.read(str(target), as_version=4)
    assert nb.cells[0].outputs[0].text == 'smoke\n'
    assert nb.cells[1].outputs[0].text == 'chapter\n'
    assert target.with_suffix('.kernel.log').exists()


def test_an_error_names_the_notebook_and_the_cell(tmp_path):
    source = write(tmp_path, notebook('x = 1', 'y = 2', "raise ValueError('the data is gone')", 'z = 3'))
    target = tmp_path / 'out' / 'chapter_pytorch.ipynb'
    with pytest.raises(execute.ExecutionError) as error:
        execute.execute(source, target, cell_timeout=60)
    message = str(error.value)
    assert str(source) in message
    assert "failed in cell 2 (\"raise ValueError('the data is gone')\")" in message
    assert 'ValueError: the data is gone' in message
    assert not target.exists()
    partial = nbformat.read(str(target.with_suffix('.failed.ipynb')), as_version=4)
    assert partial.cells[2].outputs[0].ename == 'ValueError'


def test_a_timeout_names_the_cell(tmp_path):
    source = write(tmp_path, notebook('import time', 'time.sleep(30)'))
    with pytest.raises(execute.ExecutionError, match=r'failed in cell 1 .*per-cell timeout of 2 s'):
        execute.execute(source, tmp_path / 'out.ipynb', cell_timeout=2)


def test_a_missing_kernel_says_how_to_get_it(tmp_path):
    source = write(tmp_path, notebook('1', kernel='d2lmini-no-such-framework'))
    with pytest.raises(execute.ExecutionError, match=r"'d2lmini-no-such-framework', which is not installed \(run `make setup`"):
        execute.execute(source, tmp_path / 'out.ipynb')


def test_a_given_kernel_overrides_the_one_the_notebook_names(tmp_path):
    """The chapter notebooks name Colab's python3; the build passes the framework's kernel."""
    source = write(tmp_path, notebook('print(1 + 1)', kernel='no-such-kernel'))
    target = tmp_path / 'out' / 'chapter_pytorch.ipynb'
    with pytest.raises(execute.ExecutionError, match="kernel 'no-such-kernel', which is not installed"):
        execute.execute(source, target, cell_timeout=60)
    execute.execute(source, target, cell_timeout=60, kernel='python3')
    assert nbformat.read(str(target), as_version=4).cells[0].outputs[0].text == '2\n'


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_stops_the_kernel_and_says_which(tmp_path, signum):
    """The signal reaches this process while a cell runs (the cell sends it to its kernel's
    parent): the kernel is stopped, no further cell runs, Stopped names the signal (not
    nbclient's DeadKernelError), and this process's handlers are the ones it had before."""
    marker = tmp_path / 'the-next-cell-ran'
    source = write(tmp_path, notebook(
        f'import os, time\nos.kill(os.getppid(), {int(signum)})\ntime.sleep(60)',
        f'open({str(marker)!r}, "w").close()'))
    target = tmp_path / 'out' / 'chapter_pytorch.ipynb'
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with pytest.raises(execute.Stopped) as stopped:
        execute.execute(source, target, cell_timeout=120)
    assert stopped.value.signum == signum
    assert isinstance(stopped.value, KeyboardInterrupt)     # uncaught, it ends a program as Ctrl-C does
    assert not marker.exists()
    assert target.with_suffix('.failed.ipynb').exists() and not target.exists()
    assert {s: signal.getsignal(s) for s in before} == before
