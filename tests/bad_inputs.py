"""What the bad-input tests share (tests/test_bad_inputs.py: training; tests/test_bad_tool_inputs.py: the tools): a
small workspace, its digest, and the checks that a command ended in one `error:` line with exit status 2."""
import hashlib
import os
import shutil
import subprocess
import sys

import pytest

import tiny_ntu
from engine import main as train_main
from lstbase import errors
from preprocess import synthetic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def config(ws, folder, model='model.ctrgcn.Model_lst_4part', k=8, data=None, name='cfg', **extra):
    """A tiny NTU-layout config in <folder>/<name>.yaml; `extra` sets or overrides any key."""
    extra = dict(dict(text_dir=ws / 'text', text_cache_dir=ws / 'bank', test_batch_size=8, seed=1), **extra)
    return tiny_ntu.write_config(os.path.join(folder, f'{name}.yaml'), data or ws / 'data' / 'NTU60_CS.npz',
                                 extra.pop('text_dir'), extra.pop('text_cache_dir'), model, k, **extra)


def train(dataset, *argv):
    return train_main(dataset, [str(a) for a in argv])


def make_workspace(base):
    """Tiny NTU data and descriptions, an LST joint stream trained one epoch in base/joint, raw NTU files in
    base/raw and NW-UCLA files in base/ucla/all_sqe."""
    tiny_ntu.write_npz(str(base / 'data' / 'NTU60_CS.npz'), train=16, test=8)
    tiny_ntu.write_descriptions(base / 'text')
    train('ntu', '--config', config(base, base / 'configs', name='joint'), '--work-dir', base / 'joint')
    synthetic.write_ntu(str(base / 'raw'), num_classes=2, per_class=4)
    synthetic.write_ucla(str(base / 'ucla' / 'all_sqe'), num_classes=10, per_class=3)
    return base


def digest(root):
    """sha256 of every file under `root` (names relative to it)."""
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, 'rb') as f:
                out[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


def last_error_line(stderr, match):
    """The last line of `stderr` (after whatever progress bars were drawn): one `error:` line holding `match`."""
    err = stderr.replace('\r', '\n').strip().split('\n')[-1]
    assert 'error: ' in err and 'Traceback' not in stderr, stderr
    for text in ([match] if isinstance(match, str) else match):
        assert text in err, f'{text!r} not in {err!r}'
    return err


def fails(capsys, function, *args, match=()):
    """Run `function` as its command line does; it must exit 2 with one line `error: ...` holding `match`, and no
    traceback."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        errors.run(function, *args)
    stderr = capsys.readouterr().err
    assert stop.value.code == 2, stderr
    assert stderr.replace('\r', '\n').strip().split('\n')[-1].startswith('error: '), stderr
    return last_error_line(stderr, match)


def refused(capsys, function, argv, match=()):
    """A command line argparse refuses: exit status 2, its usage, then `<prog>: error: ...` holding `match`."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        function(argv)
    stderr = capsys.readouterr().err
    assert stop.value.code == 2, stderr
    return last_error_line(stderr, match)


def command(argv, cwd=ROOT, **popen):
    """A command line run as the user runs it (a process of its own); its CompletedProcess, text output."""
    env = dict(os.environ, PYTHONPATH=ROOT, PYTHONDONTWRITEBYTECODE='1', OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable] + [str(a) for a in argv], cwd=cwd, capture_output=True, text=True, env=env,
                          **popen)


def weights_of(run_dir):
    return sorted(str(p) for p in run_dir.glob('runs-*.pt'))[-1]


def copy_run(ws, tmp, name='joint'):
    target = tmp / name
    shutil.copytree(ws / name, target)
    return target


class Evil:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)
