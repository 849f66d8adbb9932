"""tools/reproduce.py: schedules, the quick command end to end on generated NW-UCLA data, resume, failures."""
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tools'))
import paired_stats  # noqa: E402
import reproduce  # noqa: E402
import reproduce_summary  # noqa: E402


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
    first = subprocess.run(argv, capture_output=True, text=True, timeout=3 * 3600)
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
        assert sum(t['b'] for t in row['mcnemar']) == row['a_only'] and row['pairs'] == 2 * row['samples']
    assert '## Per class, lst - control: joint' in (out / 'summary.md').read_text()
    assert summary['table']['control/bone']['last']['n'] == 2
    # McNemar per seed: the discordant samples add up to the paired difference of the runs' own top-1
    assert summary['data'] == dict(generated=True, test_samples=40)
    for row, test in zip(paired['joint']['per_seed'], paired['joint']['mcnemar']['last']):
        assert test['seed'] == row['seed'] and 0 <= test['p'] <= 1
        assert 100 * (test['b'] - test['c']) / 40 == pytest.approx(row['last'], abs=0.02)
    assert paired['joint']['arms']['lst']['best']['n'] == 2 and 'seeds_for_80_power' in paired['joint']['best']
    # the fused difference per seed is the difference of the arms' fusions
    fused = summary['fused_paired']['lst - control']['2']
    arms_fused = {arm: {r['seed']: r['last'] for r in summary['ensembles'][f'{arm}/2']['per_seed']}
                  for arm in ('lst', 'control')}
    assert [r['last'] for r in fused['per_seed']] == [round(arms_fused['lst'][s] - arms_fused['control'][s], 2)
                                                      for s in (1, 2)]
    assert summary['ensembles']['lst/2']['missing'] == []
    assert '| fused joint + bone |' in (out / 'summary.md').read_text()
    for r in summary['runs']:
        assert len(r['curve']) == 3 and 0 <= r['best'] <= 100
    assert (out / 'curves.png').stat().st_size > 0 and '| lst/joint |' in (out / 'summary.md').read_text()
    # the paired difference is computed from the runs themselves
    by = {(r['arm'], r['stream'], r['seed']): r for r in summary['runs']}
    assert paired['joint']['per_seed'][0]['best'] == pytest.approx(
        by['lst', 'joint', 1]['best'] - by['control', 'joint', 1]['best'])
    logs = {p: p.stat().st_mtime_ns for p in out.glob('*/*/seed*/log.txt')}
    assert len(logs) == 8
    again = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    assert again.returncode == 0 and 'all 8 runs finished already' in again.stdout
    assert json.loads((out / 'summary.json').read_text()) == summary
    assert {p: p.stat().st_mtime_ns for p in logs} == logs                   # nothing trained again
    # finished runs of other settings are not summarised as this command's
    other = subprocess.run(argv + ['--', '--weight-decay', '0.001'], capture_output=True, text=True, timeout=1800)
    assert other.returncode == 2 and 'finished run(s)' in other.stderr and 'weight_decay 0.0004 there, 0.001 asked' \
        in other.stderr, other.stderr[-2000:]
    assert json.loads((out / 'summary.json').read_text()) == summary
    # the machine line is what the runs ran with, not what a later summarising command was given
    (machine,) = summary['machine']
    assert '2 run(s) at a time' in machine and 'PyTorch' in machine
    later = argv[2:argv.index('--jobs')] + ['--jobs', '1', '--head', 'all-MiniLM-L6-v2', '--summary-only']
    exported = tmp_path / 'results'
    assert reproduce.main(later + ['--out', str(out), '--summary-dir', str(tmp_path / 'later'),
                                   '--export-results', str(exported)]) == 0
    assert json.loads((tmp_path / 'later' / 'summary.json').read_text()) == summary
    # the same summary from the exported small files alone (no weights, no data)
    assert not list(exported.glob('*/*/*/*.pt')) and (exported / 'lst/joint/seed1/exit.json').exists()
    assert reproduce.main(later + ['--out', str(exported)]) == 0
    assert json.loads((exported / 'summary.json').read_text()) == summary and not (exported / 'data').exists()


def one_hot_scores(names, predicted, confidence=1.0, num_class=3):
    return {n: [confidence if k == c else 0.0 for k in range(num_class)] for n, c in zip(names, predicted)}


def test_per_class_difference_counts_each_arms_own_hits(tmp_path):
    from lstbase.files import save_pickle
    names, labels = ['a', 'b', 'c', 'd', 'e'], [0, 0, 1, 1, 1]
    # predicted classes per arm and seed; class 0 has 2 samples, class 1 has 3
    predicted = {('lst', 1): [0, 0, 1, 1, 0], ('control', 1): [0, 1, 0, 1, 1],
                 ('lst', 2): [0, 1, 1, 1, 1], ('control', 2): [0, 1, 1, 1, 1],
                 ('lst', 3): [0, 0, 1, 0, 0]}                                  # seed 3: control did not finish
    runs = {}
    for (arm, seed), classes in predicted.items():
        run = reproduce.Run(arm, 'joint', seed, str(tmp_path))
        save_pickle(one_hot_scores(names, classes, num_class=2), os.path.join(run.work_dir, 'last_test_score.pkl'))
        run.finished_flag = True
        runs[arm, 'joint', seed] = run

    def table(seeds, arms=('lst', 'control')):
        files = reproduce_summary.ScoreFiles(names)
        pairs = reproduce_summary.paired_predictions(runs, 'joint', seeds, files, arms, 'last_test_score.pkl')
        return reproduce_summary.per_class_paired(pairs, labels, ['zero', 'one'])
    paired = table([1, 2, 3])
    assert paired['seeds'] == [1, 2] and paired['missing'] == []
    zero, one = paired['classes']
    # class 0: lst right 2/2 then 1/2, control 1/2 then 1/2 -> +50, 0; one (sample, seed) right in lst only
    assert (zero['name'], zero['samples'], zero['per_seed'], zero['mean']) == ('zero', 2, [50.0, 0.0], 25.0)
    assert (zero['a'], zero['b'], zero['a_only'], zero['b_only']) == (75.0, 50.0, 1, 0)
    # class 1: lst 2/3 then 3/3, control 2/3 then 3/3; sample c right in lst only, sample e in control only
    assert (one['per_seed'], one['a_only'], one['b_only']) == ([0.0, 0.0], 1, 1)
    # ... per seed: seed 1 holds both discordant samples, one each way (exact p 1); seed 2 none
    assert one['mcnemar'] == [dict(seed=1, b=1, c=1, p=1.0), dict(seed=2, b=0, c=0, p=1.0)]
    # the wrong classes: for class 1, lst says 0 twice (seed 1: e, seed 2: none), control says 0 once (c, seed 1)
    assert one['a_confused'] == dict(label=0, name='zero', count=1, other_count=1)
    assert one['pairs'] == 6 and one['t_test']['p'] is None               # 0 and 0: no spread, no t
    md = '\n'.join(reproduce_summary.per_class_markdown('joint', paired))
    assert '| 0 zero | 2 | 75.0 | 50.0 | +50.0, +0.0 | +25.0 | 1 / 0 |' in md and 'seeds 1, 2' in md
    assert '| class | samples | lst | control | lst - control per seed |' in md
    # the other way round, the signs and the counts swap
    swapped = table([1, 2], ('control', 'lst'))
    assert swapped['classes'][0]['per_seed'] == [-50.0, 0.0] and swapped['classes'][0]['b_only'] == 1
    # no finished pair: no table; a finished run without its score file: named, not dropped in silence
    assert table([3]) is None
    os.remove(os.path.join(runs['control', 'joint', 2].work_dir, 'last_test_score.pkl'))
    assert table([1, 2])['missing'] == ['control/joint/seed2/last_test_score.pkl: missing']


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


def test_the_paired_difference_gets_its_t_interval_t_test_and_power():
    stat = paired_stats.with_ci(paired_stats.mean_std([1.0, 2.0, 3.0]))
    # mean 2, sample std 1, n 3: 2 +- t(0.975, 2 df) / sqrt(3), t = 4.3027 from the table
    assert stat['ci95'] == pytest.approx([2 - 4.3027 / 3 ** 0.5, 2 + 4.3027 / 3 ** 0.5], abs=1e-3)
    assert 'ci95' not in paired_stats.with_ci(paired_stats.mean_std([5.0]))            # one seed: no interval
    assert reproduce_summary.fmt(stat) == '2.00 +- 1.00 (n=3, 95% CI [-0.48, +4.48])'
    # doffing's differences on seeds 1-3 (docs/results.md): t = 8.0, 2 df, p = 0.015
    test = paired_stats.paired_stat([16.3, 23.3, 16.3])
    assert (round(test['t'], 1), test['df'], round(test['p'], 3)) == (8.0, 2, 0.015)
    assert test['seeds_for_80_power'] == paired_stats.seeds_for_power(test['mean'], test['std'])
    assert reproduce_summary.fmt(test, signed=True).startswith('+18.63 +- 4.04 (n=3, 95% CI [') and 'p 0.015' in \
        reproduce_summary.fmt(test, signed=True)


LABELS = [0, 0, 0, 1, 1, 2]                               # NW-UCLA's first three classes, 3 + 2 + 1 test samples
NAMES = [f's{i}' for i in range(len(LABELS))]


def fake_run(out, arm, stream, seed, last, best=None, finished=True, confidence=1.0):
    """A run's folder as the trainer leaves it, without training: metrics.json (3 epochs, the quick schedule's) and
    the best and last epoch's score files predicting the classes `best` and `last` with `confidence`."""
    from lstbase.files import save_pickle
    best = last if best is None else best
    run = reproduce.Run(arm, stream, seed, str(out))
    top1 = {kind: float(np.mean(np.array(predicted) == LABELS)) for kind, predicted in (('best', best), ('last', last))}
    history = [dict(epoch=1, val_acc=0.2, seconds=60), dict(epoch=2, val_acc=top1['best'], seconds=60),
               dict(epoch=3, val_acc=top1['last'], seconds=60)]
    metrics = dict(history=history if finished else history[:1], best_acc=top1['best'], best_epoch=2, num_epoch=3,
                   finished=finished)
    os.makedirs(run.work_dir)
    (open(os.path.join(run.work_dir, 'metrics.json'), 'w')).write(json.dumps(metrics))
    if finished:
        save_pickle(one_hot_scores(NAMES, best, confidence), os.path.join(run.work_dir, 'epoch1_test_score.pkl'))
        save_pickle(one_hot_scores(NAMES, last, confidence), os.path.join(run.work_dir, 'last_test_score.pkl'))
    return run


def fake_reproduction(out):
    """lst and control, joint and bone, seeds 1-3: control/joint/seed3 failed, lst/bone/seed3 lost its best-epoch
    score file. Bone scores are twice as confident as joint ones, so the two-stream fusion predicts bone's classes."""
    # joint, last = best                 lst: 6/6, 5/6, 5/6          control: 3/6, 4/6, failed
    fake_run(out, 'lst', 'joint', 1, [0, 0, 0, 1, 1, 2])
    fake_run(out, 'control', 'joint', 1, [0, 1, 1, 1, 0, 2])
    fake_run(out, 'lst', 'joint', 2, [0, 0, 1, 1, 1, 2])
    fake_run(out, 'control', 'joint', 2, [0, 1, 1, 1, 1, 2])
    fake_run(out, 'lst', 'joint', 3, [0, 0, 0, 1, 1, 1])
    failed = fake_run(out, 'control', 'joint', 3, [0] * 6, finished=False)
    with open(os.path.join(failed.work_dir, 'console.log'), 'w') as f:
        f.write('Epoch 2\nValueError: the loss is NaN\n')
    reproduce.write_exit_record(failed, 1)
    # bone                               lst: 5/6, 6/6, 6/6          control: 5/6 (best 6/6), 5/6, 6/6
    fake_run(out, 'lst', 'bone', 1, [0, 0, 0, 1, 1, 1], confidence=2.0)
    fake_run(out, 'control', 'bone', 1, [0, 0, 0, 1, 1, 1], best=[0, 0, 0, 1, 1, 2], confidence=2.0)
    fake_run(out, 'lst', 'bone', 2, [0, 0, 0, 1, 1, 2], confidence=2.0)
    fake_run(out, 'control', 'bone', 2, [0, 0, 0, 0, 1, 2], confidence=2.0)
    lost = fake_run(out, 'lst', 'bone', 3, [0, 0, 0, 1, 1, 2], confidence=2.0)
    os.remove(os.path.join(lost.work_dir, 'epoch1_test_score.pkl'))
    fake_run(out, 'control', 'bone', 3, [0, 0, 0, 1, 1, 2], confidence=2.0)
    with open(os.path.join(out, reproduce.LABELS_FILE), 'w') as f:
        json.dump(dict(names=NAMES, labels=LABELS), f)


SUMMARY_ONLY = ['--benchmark', 'ucla', '--streams', 'joint', 'bone', '--arms', 'lst', 'control', '--seeds', '1', '2',
                '3', '--schedule', 'quick', '--summary-only']


def test_summary_of_fake_runs_hand_counted(tmp_path):
    out = tmp_path / 'out'
    fake_reproduction(out)
    assert reproduce.main(SUMMARY_ONLY + ['--out', str(out)]) == 1             # a failed run
    summary = json.loads((out / 'summary.json').read_text())
    md = (out / 'summary.md').read_text()
    assert summary['data'] == dict(generated=True, test_samples=6) and 'Data: **generated**' in md
    assert not (out / 'data').exists()                   # the labels came with the folder: nothing generated
    # the failed run reads failed, with its reason, though this process did not run it (its exit record)
    failed = next(r for r in summary['runs'] if (r['arm'], r['stream'], r['seed']) == ('control', 'joint', 3))
    assert (failed['status'], failed['reason'], failed['returncode']) == ('failed', 'ValueError: the loss is NaN', 1)
    # arm means: all runs (lst joint n=3) beside the paired seeds' (n=2: control seed 3 failed)
    joint = summary['paired']['lst - control']['joint']
    assert summary['table']['lst/joint']['last']['n'] == 3
    assert joint['arms']['lst']['last']['n'] == 2 and joint['arms']['lst']['last']['mean'] == pytest.approx(91.665)
    assert joint['arms']['control']['last']['mean'] == pytest.approx((50 + 66.67) / 2)
    assert [r['last'] for r in joint['per_seed']] == [50.0, 16.66]          # 100 - 50, 83.33 - 66.67
    assert isinstance(joint['last']['seeds_for_80_power'], int) and joint['last']['p'] is not None
    # McNemar, seed 1: lst alone right on samples 1, 2, 4 (p = 2 / 8); seed 2: on sample 1
    assert joint['mcnemar']['last'] == [dict(seed=1, b=3, c=0, p=0.25), dict(seed=2, b=1, c=0, p=1.0)]
    bone = summary['paired']['lst - control']['bone']
    assert [t['seed'] for t in bone['mcnemar']['last']] == [1, 2, 3]
    assert [t['seed'] for t in bone['mcnemar']['best']] == [1, 2]             # seed 3: lst's best scores are lost
    assert bone['missing'] == ['lst/bone/seed3/epoch1_test_score.pkl: missing']
    # per class, joint: class 0 (3 samples x 2 seeds): lst 3/3 then 2/3, control 1/3 twice
    zero = summary['per_class']['lst - control']['joint']['classes'][0]
    assert zero['per_seed'] == [66.67, 33.33] and (zero['a_only'], zero['b_only']) == (3, 0)
    assert [(t['b'], t['c'], t['p']) for t in zero['mcnemar']] == [(2, 0, 0.5), (1, 0, 1.0)]
    # t = 50 / (23.57 / sqrt 2) = 3.0 with 1 df (a Cauchy): p = 1 - 2 atan(3) / pi
    assert zero['t_test']['p'] == pytest.approx(1 - 2 * math.atan(3) / math.pi, abs=1e-3)
    # control calls 4 of the 6 pairs class 1 (pick up with two hands), lst 1
    assert zero['b_confused'] == dict(label=1, name='pick up with two hands', count=4, other_count=1)
    assert zero['a_confused'] == dict(label=1, name='pick up with two hands', count=1, other_count=4)
    assert 'pick up with two hands 4 (lst 1)' in md
    # the fusion follows bone: lst 83.33 / 100 / (100, its best file lost), control 100 best 83.33 last / 83.33
    lst_fused = summary['ensembles']['lst/2']
    assert [(r['seed'], r['best'], r['last']) for r in lst_fused['per_seed']] == [(1, 83.33, 83.33), (2, 100.0, 100.0),
                                                                                   (3, None, 100.0)]
    assert lst_fused['missing'] == ['lst/bone/seed3/epoch1_test_score.pkl: missing']
    assert summary['ensembles']['control/2']['missing'] == ['control/joint/seed3: not finished']
    fused = summary['fused_paired']['lst - control']['2']
    assert [(r['seed'], r['best'], r['last']) for r in fused['per_seed']] == [(1, -16.67, 0.0), (2, 16.67, 16.67)]
    assert fused['best']['mean'] == 0.0 and fused['best']['seeds_for_80_power'] is None
    assert fused['last']['ci95'] == pytest.approx([8.335 - 12.706 * fused['last']['std'] / 2 ** 0.5,
                                                   8.335 + 12.706 * fused['last']['std'] / 2 ** 0.5], abs=1e-2)
    assert fused['arms']['control']['best']['mean'] == pytest.approx((100 + 83.33) / 2)
    for text in ('| fused joint + bone |', 'seeds for 80% power', "McNemar's exact test", 'seed 1: 3 : 0, p 0.25',
                 'lst/bone/seed3/epoch1_test_score.pkl: missing', '| control/joint/seed3 | failed: `ValueError'):
        assert text in md, text


def test_welch_difference_of_unpaired_arms_hand_counted():
    from scipy.stats import ttest_ind
    test = paired_stats.welch([1.0, 2.0, 3.0], [2.0, 4.0, 6.0])
    # variances of the means 1/3 and 4/3: df = (5/3)^2 / ((1/3)^2 / 2 + (4/3)^2 / 2) = 50/17
    assert test['mean'] == pytest.approx(-2.0) and test['df'] == pytest.approx(50 / 17) and test['n'] == [3, 3]
    reference = ttest_ind([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], equal_var=False)
    assert test['p'] == pytest.approx(reference.pvalue)
    assert test['ci95'] == pytest.approx(list(reference.confidence_interval(0.95)))
    one = paired_stats.welch([80.0], [70.0, 75.0])                               # one run in an arm: no interval
    assert (one['mean'], one['ci95'], one['p'], one['n']) == (7.5, None, None, [1, 2])


def test_ctrgcn_is_compared_unpaired_over_all_its_runs(tmp_path):
    out = tmp_path / 'out'
    fake_reproduction(out)
    fake_run(out, 'ctrgcn', 'joint', 1, [0, 0, 0, 1, 1, 1])                      # 5/6
    fake_run(out, 'ctrgcn', 'joint', 2, [0, 1, 1, 1, 1, 2])                      # 4/6
    argv = SUMMARY_ONLY[:SUMMARY_ONLY.index('--arms') + 1] + ['lst', 'control', 'ctrgcn'] + \
        SUMMARY_ONLY[SUMMARY_ONLY.index('--seeds'):]
    assert reproduce.main(argv + ['--out', str(out)]) == 1                      # a failed run, and ctrgcn/bone not run
    summary = json.loads((out / 'summary.json').read_text())
    assert list(summary['paired']) == ['lst - control']                       # never paired with CTR-GCN
    lst_joint = summary['unpaired']['lst - ctrgcn']['joint']['last']
    # lst joint: 100, 83.33, 83.33 (all three runs); ctrgcn: 83.33, 66.67
    assert lst_joint['n'] == [3, 2] and lst_joint['mean'] == pytest.approx(88.89 - 75.0, abs=0.01)
    control = summary['unpaired']['control - ctrgcn']['joint']['last']
    assert control['n'] == [2, 2] and control['mean'] == pytest.approx((50 + 66.67) / 2 - 75.0, abs=0.01)
    assert 'bone' not in summary['unpaired']['lst - ctrgcn']                  # ctrgcn has no bone run here
    md = (out / 'summary.md').read_text()
    assert '## Unpaired difference, lst - ctrgcn' in md and "Welch" in md


def test_a_summary_recomputed_from_the_exported_files_is_the_same(tmp_path):
    out, exported = tmp_path / 'out', tmp_path / 'results'
    fake_reproduction(out)
    for run in out.glob('*/*/seed*'):
        (run / 'checkpoint.pt').write_bytes(b'weights')            # big files stay behind
    assert reproduce.main(SUMMARY_ONLY + ['--out', str(out), '--export-results', str(exported)]) == 1
    assert not list(exported.glob('*/*/*/checkpoint.pt')) and (exported / 'control/joint/seed3/exit.json').exists()
    assert reproduce.main(SUMMARY_ONLY + ['--out', str(exported)]) == 1
    assert json.loads((exported / 'summary.json').read_text()) == json.loads((out / 'summary.json').read_text())
    assert (exported / 'summary.md').read_text() == (out / 'summary.md').read_text()


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
    record = reproduce_summary.run_record(run, 3, reproduce.FOLDER_DELETED)
    assert (record['status'], record['reason']) == ('failed', 'its folder lst/joint/seed1 was deleted while it ran')
    # deleted after it ended, before the summary
    later = reproduce.Run('lst', 'joint', 2, str(tmp_path))
    assert reproduce.execute(later, [sys.executable, '-c', 'pass'], None) == 0
    shutil.rmtree(later.work_dir)
    assert reproduce_summary.run_record(later, 3, 0)['reason'] == \
        'its folder lst/joint/seed2 was deleted during the reproduction'
    assert reproduce_summary.run_record(later, 3)['status'] == 'not run'                 # never run here: nothing to say


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
    record = reproduce_summary.run_record(run, 3)
    assert record['status'] == 'unreadable' and record['reason'].startswith('lst/joint/seed1/metrics.json: ')
    assert says in record['reason'] and '\n' not in record['reason']
    assert '| lst/joint/seed1 | unreadable: `lst/joint/seed1/metrics.json: ' in reproduce_summary.markdown(
        reproduce_summary.summarize([record], {}, 'ucla', ['joint'], ['lst'], [1], 'quick', None, [],
                                    dict(generated=True)))


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
    deadline = time.time() + 1800                                            # a hang guard
    while not (first.exists() and 'Parameters' in first.read_text()):       # the trainer is up and handles SIGINT
        assert parent.poll() is None and time.time() < deadline, parent.communicate()
        time.sleep(0.2)
    parent.send_signal(signal.SIGTERM)
    stdout, stderr = parent.communicate(timeout=reproduce.STOP_GRACE_S + 300)
    left = processes_mentioning(str(out))
    for pid in left:                                                         # a failing test leaves nothing behind
        os.kill(pid, signal.SIGKILL)
    assert left == [] and parent.returncode == 130, stdout[-2000:] + stderr[-2000:]
    assert 'interrupted: 1 run(s) stopped' in stderr and 'the same command continues' in stderr
    assert first.read_text().rstrip().endswith('interrupted: the run resumes from its last finished epoch')
    assert not (out / 'control').exists()                                    # the queued run never started
    assert not (out / 'summary.json').exists()


def test_the_names_only_arm_differs_from_lst_by_the_part_text_alone(tmp_path):
    opts = reproduce.parse(['--out', str(tmp_path), '--head', 'all-MiniLM-L6-v2'])
    opts.num_worker = 0
    lst, _ = reproduce.command(reproduce.Run('lst', 'joint', 4, str(tmp_path)), 'ucla', 'short', opts, None)
    names, _ = reproduce.command(reproduce.Run('lst_names', 'joint', 4, str(tmp_path)), 'ucla', 'short', opts, None)
    assert names[-2:] == ['--part-text', 'False'] and names[:-2][:len(lst)] == [
        a.replace(os.sep + 'lst' + os.sep, os.sep + 'lst_names' + os.sep) for a in lst]
    assert ('lst', 'lst_names') in reproduce_summary.COMPARISONS and ('lst_names', 'control') in reproduce_summary.COMPARISONS


def test_custom_benchmark_runs_on_your_file_classes_and_descriptions(tmp_path):
    (tmp_path / 'my.pkl').touch()
    (tmp_path / 'my_text').mkdir()
    opts = reproduce.parse(['--out', str(tmp_path), '--benchmark', 'custom-2d', '--ann-file', str(tmp_path / 'my.pkl'),
                            '--num-class', '7', '--text-dir', str(tmp_path / 'my_text'), '--head', 'all-MiniLM-L6-v2'])
    opts.num_worker = 0
    argv, _ = reproduce.command(reproduce.Run('lst', 'bone', 1, str(tmp_path)), 'custom-2d', 'short', opts, None)
    assert argv[argv.index('--config') + 1].endswith(os.path.join('config', 'custom', 'lst_bone_2d.yaml'))
    assert str(tmp_path / 'my.pkl') in argv[argv.index('--train-feeder-args') + 1]
    assert "'num_class': 7" in argv[argv.index('--model-args') + 1]
    assert argv[argv.index('--text-dir') + 1] == str(tmp_path / 'my_text')
    baseline, _ = reproduce.command(reproduce.Run('ctrgcn', 'joint', 1, str(tmp_path)), 'custom-2d', 'short', opts,
                                    None)
    assert baseline[baseline.index('--config') + 1].endswith('ctrgcn_joint_2d.yaml') and '--text-dir' not in baseline
    with pytest.raises(SystemExit):
        reproduce.parse(['--out', str(tmp_path), '--benchmark', 'custom-2d'])         # your data is needed
