"""tools/gpu_session.sh: the one-call GPU session, run on the CPU (--smoke), its packing and restoring, and the time
limit of tools/reproduce.py it relies on."""
import json
import os
import re
import subprocess
import sys
import tarfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tools'))
import gpu_session  # noqa: E402
import reproduce  # noqa: E402

KiB = 1024


# ---------------------------------------------------------------------------------------------------- time limit
def sleeper(on_sigint):
    """A child that sets how it takes SIGINT, says so, sleeps a minute, and says WOKE when it wakes (it never should;
    the log's copy of its command line holds the word in lower case)."""
    return (f'import signal, time; signal.signal(signal.SIGINT, {on_sigint}); print("up", flush=True); '
            f'time.sleep(60); print("woke".upper(), flush=True)')


def test_a_run_past_the_time_limit_is_stopped_and_one_not_started_never_runs(tmp_path):
    run = reproduce.Run('lst', 'joint', 1, str(tmp_path))
    # the child, like the trainer, takes SIGINT even when started from a background job (which ignores it): its
    # KeyboardInterrupt in the log shows that SIGINT stopped it, not the kill after the grace (no clock is read)
    child = sleeper('signal.default_int_handler')
    code = reproduce.execute(run, [sys.executable, '-c', child], None, time.time() + 5)
    log = open(os.path.join(run.work_dir, 'console.log')).read()
    assert code == reproduce.STOPPED and 'KeyboardInterrupt' in log and 'WOKE' not in log
    assert log.rstrip().endswith('stopped at the time limit: the run resumes from its last finished epoch')
    late = reproduce.Run('lst', 'joint', 2, str(tmp_path))
    assert reproduce.execute(late, [sys.executable, '-c', 'print(1)'], None, time.time()) == reproduce.NOT_STARTED
    assert not os.path.exists(late.work_dir)


def test_a_run_that_ignores_sigint_is_killed_after_the_grace(tmp_path, monkeypatch):
    monkeypatch.setattr(reproduce, 'STOP_GRACE_S', 1)
    run = reproduce.Run('lst', 'joint', 1, str(tmp_path))
    code = reproduce.execute(run, [sys.executable, '-c', sleeper('signal.SIG_IGN')], None, time.time() + 2)
    log = open(os.path.join(run.work_dir, 'console.log')).read()
    assert code == reproduce.STOPPED and 'WOKE' not in log and 'KeyboardInterrupt' not in log     # killed asleep


def test_time_limit_zero_trains_nothing_and_still_summarises(tmp_path):
    summaries = tmp_path / 'summaries'
    code = reproduce.main(['--streams', 'joint', '--arms', 'lst', 'control', '--seeds', '1', '--schedule', 'quick',
                           '--head', 'all-MiniLM-L6-v2', '--out', str(tmp_path / 'out'), '--time-limit', '0',
                           '--summary-dir', str(summaries)])
    assert code == 0
    summary = json.loads((summaries / 'summary.json').read_text())
    assert [r['status'] for r in summary['runs']] == ['not run', 'not run']
    assert (summaries / 'summary.md').exists() and not (tmp_path / 'out' / 'summary.json').exists()


def test_a_failing_bench_variant_becomes_a_note_and_the_others_are_timed():
    from bench.train_step import working

    def broken():
        raise RuntimeError('no kernel for this dtype\nsecond line\nthird line')
    notes = []
    ok = working({'CTR-GCN': lambda: None, 'LST, released code': broken}, notes)
    assert list(ok) == ['CTR-GCN']
    assert notes == ['LST, released code: failed, not timed (RuntimeError: no kernel for this dtype second line)']


# ---------------------------------------------------------------------------------------------------- packing
def fake_run(work, name, epochs, best, finished, files):
    """A reproduce run folder: metrics.json as the trainer writes it, and files of the given sizes (KiB)."""
    folder = work / 'reproduce' / 'ucla-full' / name
    folder.mkdir(parents=True)
    (folder / 'config.yaml').write_text('seed: 1\n')
    metrics = dict(history=[dict(epoch=e + 1, val_acc=0.5) for e in range(epochs)], best_acc=0.5, best_epoch=best,
                   best_weights=None, num_epoch=3, finished=finished)
    (folder / 'metrics.json').write_text(json.dumps(metrics))
    for file, kib in files.items():
        (folder / file).write_bytes(os.urandom(kib * KiB))
    return folder


def test_pack_keeps_what_resumes_within_the_limits_and_restore_brings_it_back(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_session, 'PART_BYTES', 100 * KiB)
    monkeypatch.setattr(gpu_session, 'OUT_BYTES', 700 * KiB)
    work = tmp_path / 'work'
    (work / 'logs').mkdir(parents=True)
    (work / 'logs' / 'bench.log').write_text('measured\n')
    ahead = fake_run(work, 'lst/joint/seed1', 2, 1, False, {'checkpoint.pt': 120, 'runs-1-10.pt': 60,
                                                             'runs-2-20.pt': 60, 'best.pt': 60, 'x.pt.tmp': 5,
                                                             'log.txt': 1, 'console.log': 3,
                                                             'epoch2_test_each_class_acc.csv': 1,
                                                             'training_curves.png': 2})
    behind = fake_run(work, 'control/joint/seed1', 1, 1, False, {'checkpoint.pt': 120, 'runs-1-10.pt': 60,
                                                                 'log.txt': 1})
    done = fake_run(work, 'lst/bone/seed1', 3, 3, True, {'checkpoint.pt': 120, 'runs-3-30.pt': 250,
                                                         'runs-1-10.pt': 250, 'epoch1_test_score.pkl': 2})
    out = tmp_path / 'out'
    record = dict(started='now', parts={})
    written = gpu_session.pack(str(work), str(out), 250 * KiB, record)
    names = sorted(os.path.basename(p) for p in written)
    assert names == ['results.tar.gz.part00', 'state.tar.gz.part00', 'state.tar.gz.part01',
                     'weights.tar.gz.part00', 'weights.tar.gz.part01', 'weights.tar.gz.part02']
    assert all(os.path.getsize(p) <= 100 * KiB for p in written) and len(written) < gpu_session.OUT_FILES
    assert record['pack']['state_runs'] == ['lst/joint/seed1 (epoch 2)']
    assert record['pack']['dropped_from_state'] == [
        'control/joint/seed1 (epoch 1): over --state-mb, restarts from epoch 0']
    # the next call: only the state, into a fresh work folder
    state = tmp_path / 'state'
    assert gpu_session.main(['--restore', str(out), '--state', str(state), '--work', str(tmp_path / 'read')]) == 0
    assert sorted(os.listdir(state)) == ['state.tar.gz.part00', 'state.tar.gz.part01']
    fresh = tmp_path / 'fresh'
    assert gpu_session.restore_state(str(state), str(fresh)).startswith('restored from 2 part(s)')
    resumed = fresh / 'reproduce' / 'ucla-full' / 'lst' / 'joint' / 'seed1'
    assert sorted(os.listdir(resumed)) == ['checkpoint.pt', 'config.yaml', 'log.txt', 'metrics.json', 'runs-1-10.pt']
    assert (resumed / 'checkpoint.pt').read_bytes() == (ahead / 'checkpoint.pt').read_bytes()
    assert not (fresh / 'reproduce' / 'ucla-full' / 'control').exists()          # dropped: it starts over
    assert sorted(os.listdir(fresh / 'reproduce' / 'ucla-full' / 'lst' / 'bone' / 'seed1')) == [
        'config.yaml', 'epoch1_test_score.pkl', 'metrics.json']
    assert json.loads((fresh / 'session.json').read_text())['calls'][-1]['started'] == 'now'
    assert not (fresh / 'logs').exists()                     # logs, curves, tables: with the results only
    for name in ('console.log', 'epoch2_test_each_class_acc.csv', 'training_curves.png'):
        assert (tmp_path / 'read' / 'reproduce' / 'ucla-full' / 'lst' / 'joint' / 'seed1' / name).exists()
    # for reading, everything: the finished run's best weights too, not its checkpoint
    read = tmp_path / 'read' / 'reproduce' / 'ucla-full'
    assert (read / 'lst' / 'bone' / 'seed1' / 'runs-3-30.pt').read_bytes() == (done / 'runs-3-30.pt').read_bytes()
    assert not (read / 'lst' / 'bone' / 'seed1' / 'checkpoint.pt').exists()
    assert (read / 'control' / 'joint' / 'seed1' / 'log.txt').read_bytes() == (behind / 'log.txt').read_bytes()
    # a warm machine's newer work folder is never overwritten
    assert gpu_session.restore_state(str(state), str(fresh)) == 'kept the work folder'


def test_a_part_that_fails_is_recorded_and_the_rest_still_comes_back(tmp_path, monkeypatch):
    def broken(*args):
        raise RuntimeError('CUDA error: an illegal memory access was encountered')
    monkeypatch.setattr(gpu_session, 'run_bench', broken)
    work = tmp_path / 'work'
    fake_run(work, 'lst/joint/seed1', 2, 1, False, {'checkpoint.pt': 4, 'runs-1-10.pt': 2})
    out = tmp_path / 'out'
    assert gpu_session.main(['--smoke', '--parts', 'bench', '--out', str(out), '--work', str(work)]) == 0
    assert 'bench: status failed: RuntimeError: CUDA error' in (out / 'session.md').read_text()
    assert gpu_session.archive_parts(str(out), 'state')                          # the run's state came back


# ---------------------------------------------------------------------------------------------------- the smoke
def session(tmp_path, name, *args):
    env = dict(os.environ, PYTHON=sys.executable)
    start = time.time()
    result = subprocess.run(['bash', os.path.join(ROOT, 'tools', 'gpu_session.sh'), '--smoke', '--out',
                             str(tmp_path / name), '--data', str(tmp_path / 'data'), '--text-cache-dir',
                             str(tmp_path / 'bank'), *args], capture_output=True, text=True, env=env,
                            timeout=3 * 3600)                 # a guard against a hang, not a speed test
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return time.time() - start, result.stdout


def check_returned_files(out):
    """What the device tool brings back: at most 8 files, 16 MiB each, 2 folders down, plain names."""
    files = [os.path.join(base, f) for base, _, names in os.walk(out) for f in names]
    assert 0 < len(files) <= 8
    for path in files:
        rel = os.path.relpath(path, out)
        assert rel.count(os.sep) <= 2 and re.fullmatch(r'[A-Za-z0-9._/-]+', rel), rel
        assert os.path.getsize(path) < 16 * 2 ** 20
    assert (out / 'session.md').exists()


def summaries(work):
    folder = work / 'reproduce' / 'ucla-quick' / 'summaries'
    return {stage: json.loads((folder / stage / 'summary.json').read_text()) for stage in os.listdir(folder)}


@pytest.mark.slow
def test_smoke_session_on_the_cpu_then_a_second_call_resumes(tmp_path):
    seconds, stdout = session(tmp_path, 'first')
    print(f'the first smoke call took {seconds:.0f} s')     # a measure, not a test: machines differ in speed
    out = tmp_path / 'first'
    check_returned_files(out)
    with tarfile.open(fileobj=open(sorted(out.glob('results.tar.gz.part*'))[0], 'rb'), mode='r|gz') as tar:
        names = [m.name for m in tar]
    assert 'bench/smoke-cpu.json' in names and 'logs/bench.log' in names and 'session.json' in names
    work = tmp_path / 'first-work'
    bench = json.loads((work / 'bench' / 'smoke-cpu.json').read_text())
    variants = {r['variant'] for r in bench['train_step']['rows']}
    assert {'CTR-GCN', 'LST, frozen text bank', 'LST, text tower trained each step',
            'LST, frozen text bank, channels-last'} <= variants
    assert {r['measure'].rsplit(', ', 1)[1] for r in bench['train_step']['rows']} >= {'fp32'}
    assert any(r['variant'].endswith('torch.compile') for r in bench['compile']['rows'])
    assert sum(r['variant'].startswith('DataLoader') for r in bench['feeder']['rows']) == 2
    assert bench['goals']['rows'] and bench['ntu120_epoch']['rows']
    first = summaries(work)
    assert 'joint-pair' in first
    statuses = [r['status'] for s in first.values() for r in s['runs']]
    assert set(statuses) <= {'done', 'incomplete', 'not run'}, statuses

    # the next call: what came back restored, the runs continued, the bench kept
    assert gpu_session.main(['--restore', str(out), '--state', str(tmp_path / 'state'),
                             '--work', str(tmp_path / 'read')]) == 0
    # a budget no machine runs out of: the second call finishes every run however slow the machine is
    _, stdout = session(tmp_path, 'second', '--state', str(tmp_path / 'state'), '--budget', '36000')
    assert 'bench: status partial from an earlier job: kept' in stdout or \
        'bench: status complete from an earlier job: kept' in stdout
    check_returned_files(tmp_path / 'second')
    work2 = tmp_path / 'second-work'
    second = summaries(work2)
    assert [r['status'] for s in second.values() for r in s['runs']] == ['done'] * 7
    assert second['lst-streams']['ensembles']['lst/4']['best']['n'] == 1
    calls = json.loads((work2 / 'session.json').read_text())['calls']
    assert len(calls) == 2
    for s in first.values():
        for r in s['runs']:
            log = work2 / 'reproduce' / 'ucla-quick' / r['arm'] / r['stream'] / f'seed{r["seed"]}' / 'log.txt'
            if r['status'] == 'done':              # not trained again
                assert log.read_text().count('Training epoch: 1\n') == 1
            elif r['epochs_done']:                 # continued from its checkpoint
                assert 'Resumed from' in log.read_text()
