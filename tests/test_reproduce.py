"""tools/reproduce.py: schedules, the quick command end to end on generated NW-UCLA data, resume, failures."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tools'))
import paired_stats  # noqa: E402
import reproduce  # noqa: E402


def released(path):
    with open(os.path.join(ROOT, path)) as f:
        return yaml.safe_load(f)


def test_schedules_scale_epochs_steps_and_warm_up_together():
    ucla = released('config/ucla/lst_joint.yaml')
    assert reproduce.schedule_of(ucla, 'full') == dict(num_epoch=110, step=[90, 100], warm_up_epoch=5,
                                                       batch_size=64, repeat=5)
    assert reproduce.schedule_of(ucla, 'medium') == dict(num_epoch=110, step=[90, 100], warm_up_epoch=5,
                                                         batch_size=64, repeat=1)
    assert reproduce.schedule_of(ucla, 'short') == dict(num_epoch=30, step=[25, 27], warm_up_epoch=2,
                                                        batch_size=64, repeat=1)
    ntu = released('config/nturgbd120-cross-subject/lst_joint.yaml')
    assert reproduce.schedule_of(ntu, 'medium') == dict(num_epoch=22, step=[18, 20], warm_up_epoch=2,
                                                        batch_size=200, repeat=None)
    assert reproduce.schedule_of(ntu, 'short')['num_epoch'] == 6
    baseline = released('config/ucla/default.yaml')                # CTR-GCN's own recipe: 65 epochs x repeat 5
    assert reproduce.schedule_of(baseline, 'short') == dict(num_epoch=18, step=[14], warm_up_epoch=2,
                                                            batch_size=16, repeat=1)


def test_arms_differ_in_one_setting(tmp_path):
    opts = reproduce.parse(['--out', str(tmp_path), '--head', 'all-MiniLM-L6-v2'])
    opts.num_worker = 0
    lst, _ = reproduce.command(reproduce.Run('lst', 'bone', 2, str(tmp_path)), 'ucla', 'short', opts, None)
    control, _ = reproduce.command(reproduce.Run('control', 'bone', 2, str(tmp_path)), 'ucla', 'short', opts, None)
    assert control[-2:] == ['--loss-alpha', '0']
    differ = [(a, b) for a, b in zip(lst, control) if a != b]
    assert differ == [(os.path.join(str(tmp_path), 'lst', 'bone', 'seed2'),
                       os.path.join(str(tmp_path), 'control', 'bone', 'seed2'))]
    # lst_shuffled: the same command plus the shuffled descriptions
    shuffled, _ = reproduce.command(reproduce.Run('lst_shuffled', 'bone', 2, str(tmp_path)), 'ucla', 'short', opts,
                                    None)
    folder = str(tmp_path / 'text-shuffled')
    assert shuffled[-2:] == ['--text-dir', folder] and os.path.isfile(os.path.join(folder, 'ucla_parts.txt'))
    assert [(a, b) for a, b in zip(lst, shuffled) if a != b] == [(os.path.join(str(tmp_path), 'lst', 'bone', 'seed2'),
                                                                  os.path.join(str(tmp_path), 'lst_shuffled', 'bone',
                                                                               'seed2'))]
    baseline, _ = reproduce.command(reproduce.Run('ctrgcn', 'bone', 1, str(tmp_path)), 'ucla', 'short', opts, None)
    assert "'data_path': 'bone'" in ' '.join(baseline) and 'head' not in ' '.join(baseline)


@pytest.mark.parametrize('given, passed', [([], None), (['--device'], ['cpu']), (['--device', '0', '1'], ['0', '1'])])
def test_device_reaches_every_run(given, passed, tmp_path):
    from engine.args import parse_args
    opts = reproduce.parse(['--out', str(tmp_path)] + given)
    opts.num_worker = 0
    argv, _ = reproduce.command(reproduce.Run('lst', 'joint', 1, str(tmp_path)), 'ucla', 'short', opts, None)
    if passed is None:
        assert '--device' not in argv
        return
    at = argv.index('--device')
    assert argv[at + 1:at + 1 + len(passed)] == passed
    args = parse_args('ucla', argv[argv.index('--config'):])      # what the run's trainer makes of it
    assert args.device == [int(d) if d.isdigit() else d for d in passed]


@pytest.mark.slow
def test_quick_end_to_end_then_nothing_to_train(tmp_path):
    out = tmp_path / 'ucla'
    argv = [sys.executable, os.path.join(ROOT, 'tools', 'reproduce.py'), '--benchmark', 'ucla', '--streams', 'joint',
            'bone', '--arms', 'lst', 'control', '--seeds', '1', '2', '--schedule', 'quick', '--jobs', '2',
            '--head', 'all-MiniLM-L6-v2', '--text-cache-dir', str(tmp_path / 'bank'), '--out', str(out)]
    first = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    summary = json.loads((out / 'summary.json').read_text())
    assert [r['status'] for r in summary['runs']] == ['done'] * 8
    paired = summary['paired']['lst - control']
    assert list(summary['paired']) == ['lst - control']
    assert paired['joint']['best']['n'] == 2 and len(paired['bone']['per_seed']) == 2
    assert len(paired['joint']['best']['ci95']) == 2 and '95% CI' in (out / 'summary.md').read_text()
    assert summary['ensembles']['lst/2']['best']['n'] == 2
    # per class: the counts of samples right in one arm only add up to the per-seed differences
    assert summary['per_class']['lst - control']['joint']['arms'] == ['lst', 'control']
    for row in summary['per_class']['lst - control']['joint']['classes']:
        net = sum(d * row['samples'] / 100 for d in row['per_seed'])
        assert net == pytest.approx(row['a_only'] - row['b_only'], abs=0.05)
    assert '## Per class, lst - control: joint' in (out / 'summary.md').read_text()
    assert summary['table']['control/bone']['last']['n'] == 2
    for r in summary['runs']:
        assert len(r['curve']) == 3 and 0 <= r['best'] <= 100
    assert (out / 'curves.png').stat().st_size > 0 and '| lst/joint |' in (out / 'summary.md').read_text()
    # the paired difference is computed from the runs themselves
    by = {(r['arm'], r['stream'], r['seed']): r for r in summary['runs']}
    assert paired['joint']['per_seed'][0]['best'] == pytest.approx(
        by['lst', 'joint', 1]['best'] - by['control', 'joint', 1]['best'])
    logs = {p: p.stat().st_mtime_ns for p in out.glob('*/*/seed*/log.txt')}
    assert len(logs) == 8
    again = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and 'all 8 runs finished already' in again.stdout
    assert json.loads((out / 'summary.json').read_text()) == summary
    assert {p: p.stat().st_mtime_ns for p in logs} == logs                   # nothing trained again
    # finished runs of other settings are not summarised as this command's
    other = subprocess.run(argv + ['--', '--weight-decay', '0.001'], capture_output=True, text=True, timeout=300)
    assert other.returncode == 2 and 'finished run(s)' in other.stderr and 'weight_decay 0.0004 there, 0.001 asked' \
        in other.stderr, other.stderr[-2000:]
    assert json.loads((out / 'summary.json').read_text()) == summary
    # the machine line is what the runs ran with, not what a later summarising command was given
    (machine,) = summary['machine']
    assert '2 run(s) at a time' in machine and 'PyTorch' in machine
    assert reproduce.main(argv[2:argv.index('--jobs')] + ['--jobs', '1', '--head', 'all-MiniLM-L6-v2', '--out',
                                                          str(out), '--summary-only', '--summary-dir',
                                                          str(tmp_path / 'later')]) == 0
    assert json.loads((tmp_path / 'later' / 'summary.json').read_text())['machine'] == [machine]


def test_per_class_difference_counts_each_arms_own_hits(tmp_path):
    import pickle
    names, labels = ['a', 'b', 'c', 'd', 'e'], [0, 0, 1, 1, 1]
    # predicted classes per arm and seed; class 0 has 2 samples, class 1 has 3
    predicted = {('lst', 1): [0, 0, 1, 1, 0], ('control', 1): [0, 1, 0, 1, 1],
                 ('lst', 2): [0, 1, 1, 1, 1], ('control', 2): [0, 1, 1, 1, 1],
                 ('lst', 3): [0, 0, 1, 0, 0]}                                  # seed 3: control did not finish
    runs = {}
    for (arm, seed), classes in predicted.items():
        run = reproduce.Run(arm, 'joint', seed, str(tmp_path))
        os.makedirs(run.work_dir)
        scores = {n: [1.0 if k == c else 0.0 for k in range(2)] for n, c in zip(names, classes)}
        with open(os.path.join(run.work_dir, 'last_test_score.pkl'), 'wb') as f:
            pickle.dump(scores, f)
        run.finished_flag = True
        runs[arm, 'joint', seed] = run
    table = reproduce.per_class_paired(runs, 'joint', [1, 2, 3], names, labels, ['zero', 'one'])
    assert table['seeds'] == [1, 2]
    zero, one = table['classes']
    # class 0: lst right 2/2 then 1/2, control 1/2 then 1/2 -> +50, 0; one (sample, seed) right in lst only
    assert (zero['name'], zero['samples'], zero['per_seed'], zero['mean']) == ('zero', 2, [50.0, 0.0], 25.0)
    assert (zero['a'], zero['b'], zero['a_only'], zero['b_only']) == (75.0, 50.0, 1, 0)
    # class 1: lst 2/3 then 3/3, control 2/3 then 3/3; sample c right in lst only, sample e in control only
    assert (one['per_seed'], one['a_only'], one['b_only']) == ([0.0, 0.0], 1, 1)
    md = '\n'.join(reproduce.per_class_markdown('joint', table))
    assert '| 0 zero | 2 | 75.0 | 50.0 | +50.0, +0.0 | +25.0 | 1 / 0 |' in md and 'seeds 1, 2' in md
    assert '| class | samples | lst | control | lst - control per seed |' in md
    # the other way round, the signs and the counts swap
    swapped = reproduce.per_class_paired(runs, 'joint', [1, 2], names, labels, ['zero', 'one'], ('control', 'lst'))
    assert swapped['classes'][0]['per_seed'] == [-50.0, 0.0] and swapped['classes'][0]['b_only'] == 1
    # no finished pair: no table
    assert reproduce.per_class_paired(runs, 'joint', [3], names, labels, ['zero', 'one']) is None


def test_mcnemar_counts_the_discordant_samples_and_gives_the_exact_p():
    lst = [1, 1, 1, 1, 0, 0, 1, 0]
    control = [0, 0, 0, 1, 0, 1, 1, 0]
    # right in lst only: samples 0, 1, 2; in control only: sample 5. Exact two-sided p of 3 of 4 at 1/2:
    # P(X >= 3) + P(X <= 1) = (1 + 4 + 4 + 1) / 16
    assert paired_stats.mcnemar(lst, control) == dict(b=3, c=1, p=10 / 16)
    assert paired_stats.mcnemar([1] * 9 + [0], [0] * 9 + [1]) == dict(b=9, c=1, p=22 / 1024)   # (1 + 10) * 2 / 2^10
    assert paired_stats.mcnemar([1, 0], [1, 0]) == dict(b=0, c=0, p=1.0)


def test_seeds_for_80_percent_power_at_the_observed_spread():
    # the numbers of the team's issue: NW-UCLA joint, best epoch (+2.02 +- 4.52) and bone (+1.58 +- 2.00)
    assert paired_stats.seeds_for_power(2.02, 4.52) == 42
    assert paired_stats.seeds_for_power(1.58, 2.00) == 15
    assert paired_stats.seeds_for_power(-2.02, 4.52) == 42                    # two-sided: the sign does not matter
    assert paired_stats.seeds_for_power(0.0, 4.52) is None                    # no effect: no number of seeds
    assert paired_stats.power(42, 2.02 / 4.52) >= 0.8 > paired_stats.power(41, 2.02 / 4.52)


@pytest.mark.slow
def test_the_paired_difference_gets_its_t_interval():
    stat = reproduce.with_ci(reproduce.mean_std([1.0, 2.0, 3.0]))
    # mean 2, sample std 1, n 3: 2 +- t(0.975, 2 df) / sqrt(3), t = 4.3027 from the table
    assert stat['ci95'] == pytest.approx([2 - 4.3027 / 3 ** 0.5, 2 + 4.3027 / 3 ** 0.5], abs=1e-3)
    assert 'ci95' not in reproduce.with_ci(reproduce.mean_std([5.0]))            # one seed: no interval
    assert reproduce.fmt(stat) == '2.00 +- 1.00 (n=3, 95% CI [-0.48, +4.48])'


def test_a_failed_run_is_listed_with_its_last_log_line_under_summary_only_too(tmp_path):
    out = tmp_path / 'bad'
    argv = ['--streams', 'joint', '--arms', 'lst', '--seeds', '1', '--schedule', 'quick', '--out', str(out), '--',
            '--base-lr', 'fast']
    assert reproduce.main(argv) == 1
    summary = json.loads((out / 'summary.json').read_text())
    (run,) = summary['runs']
    assert run['status'] == 'failed' and "invalid float value: 'fast'" in run['reason']
    assert 'failed' in (out / 'summary.md').read_text()
    assert reproduce.main(argv[:-3] + ['--summary-only', '--summary-dir', str(tmp_path / 'later')]) == 1
    assert json.loads((tmp_path / 'later' / 'summary.json').read_text())['runs'] == [run]


def test_a_run_whose_folder_is_deleted_while_it_runs_has_failed_and_says_so(tmp_path):
    run = reproduce.Run('lst', 'joint', 1, str(tmp_path))
    deleting = f'import shutil; shutil.rmtree({run.work_dir!r})'
    assert reproduce.execute(run, [sys.executable, '-c', deleting], None) == reproduce.FOLDER_DELETED
    record = reproduce.run_record(run, 3, reproduce.FOLDER_DELETED)
    assert (record['status'], record['reason']) == ('failed', 'its folder lst/joint/seed1 was deleted while it ran')
    # deleted after it ended, before the summary
    later = reproduce.Run('lst', 'joint', 2, str(tmp_path))
    assert reproduce.execute(later, [sys.executable, '-c', 'pass'], None) == 0
    shutil.rmtree(later.work_dir)
    assert reproduce.run_record(later, 3, 0)['reason'] == \
        'its folder lst/joint/seed2 was deleted during the reproduction'
    assert reproduce.run_record(later, 3)['status'] == 'not run'                 # never run here: nothing to say


@pytest.mark.parametrize('content, says', [('{"history": [{"epoch": 1, "val_a', 'truncated or not JSON'),
                                           ('{"history": [], "finished": false}', 'partial: no best_acc, best_epoch'),
                                           ('{"history": [{"epoch": 1}], "best_acc": 0.5, "best_epoch": 1, '
                                            '"num_epoch": 3, "finished": false}', 'each with its val_acc')])
def test_a_truncated_or_partial_metrics_file_is_reported_not_a_traceback(tmp_path, content, says):
    run = reproduce.Run('lst', 'joint', 1, str(tmp_path))
    os.makedirs(run.work_dir)
    with open(os.path.join(run.work_dir, 'metrics.json'), 'w') as f:
        f.write(content)
    assert not run.finished(3)                             # trained again: the trainer rewrites it
    record = reproduce.run_record(run, 3)
    assert record['status'] == 'unreadable' and record['reason'].startswith('lst/joint/seed1/metrics.json: ')
    assert says in record['reason'] and '\n' not in record['reason']
    assert f'| lst/joint/seed1 | unreadable: `lst/joint/seed1/metrics.json: ' in reproduce.markdown(
        reproduce.summarize([record], {}, 'ucla', ['joint'], ['lst'], [1], 'quick', None, []))


def test_out_naming_a_file_is_one_error_line_before_anything_is_written(tmp_path, capsys):
    (tmp_path / 'taken').write_text('mine\n')
    assert reproduce.main(['--out', str(tmp_path / 'taken'), '--schedule', 'quick']) == 2
    error = capsys.readouterr().err
    assert error.startswith('error: --out ') and 'is a file' in error and error.count('\n') == 1
    assert sorted(os.listdir(tmp_path)) == ['taken'] and (tmp_path / 'taken').read_text() == 'mine\n'


def test_threads_default_to_the_usable_cores_or_omp_num_threads_over_the_jobs(monkeypatch):
    monkeypatch.setattr(os, 'sched_getaffinity', lambda pid: {0, 1, 2, 3, 4, 5}, raising=False)
    monkeypatch.delenv('OMP_NUM_THREADS', raising=False)
    assert reproduce.default_threads(2) == 3
    monkeypatch.setenv('OMP_NUM_THREADS', '2')
    assert reproduce.default_threads(2) == 1 and reproduce.default_threads(1) == 2
    monkeypatch.setenv('OMP_NUM_THREADS', '16')                               # more than the usable cores
    assert reproduce.default_threads(1) == 6


def test_the_quick_schedule_defaults_to_the_offline_text_encoder(tmp_path):
    assert reproduce.parse(['--out', str(tmp_path), '--schedule', 'quick']).head == 'all-MiniLM-L6-v2'
    assert reproduce.parse(['--out', str(tmp_path)]).head is None             # the config's, as released
    assert reproduce.parse(['--out', str(tmp_path), '--schedule', 'quick', '--head', 'ViT-B/32']).head == 'ViT-B/32'


def processes_mentioning(text):
    """The pids of the live processes whose command line contains `text`."""
    pids = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open(f'/proc/{pid}/cmdline', 'rb') as f:
                if text.encode() in f.read():
                    pids.append(int(pid))
        except OSError:
            pass
    return pids


def test_sigterm_stops_the_running_run_and_starts_no_other(tmp_path):
    out = tmp_path / 'ucla'
    argv = [sys.executable, os.path.join(ROOT, 'tools', 'reproduce.py'), '--streams', 'joint', '--arms', 'lst',
            'control', '--seeds', '1', '--schedule', 'quick', '--jobs', '1', '--head', 'all-MiniLM-L6-v2',
            '--out', str(out)]
    # started as a background job is (SIGINT ignored): the stop must not rely on it
    parent = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    first = out / 'lst' / 'joint' / 'seed1' / 'console.log'
    deadline = time.time() + 300
    while not (first.exists() and 'Parameters' in first.read_text()):       # the trainer is up and handles SIGINT
        assert parent.poll() is None and time.time() < deadline, parent.communicate()
        time.sleep(0.2)
    parent.send_signal(signal.SIGTERM)
    stdout, stderr = parent.communicate(timeout=reproduce.STOP_GRACE_S + 30)
    left = processes_mentioning(str(out))
    for pid in left:                                                         # a failing test leaves nothing behind
        os.kill(pid, signal.SIGKILL)
    assert left == [] and parent.returncode == 130, stdout[-2000:] + stderr[-2000:]
    assert 'interrupted: 1 run(s) stopped' in stderr and 'the same command continues' in stderr
    assert first.read_text().rstrip().endswith('interrupted: the run resumes from its last finished epoch')
    assert not (out / 'control').exists()                                    # the queued run never started
    assert not (out / 'summary.json').exists()
