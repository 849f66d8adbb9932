"""docs/results.md states numbers of runs whose small files are kept in docs/runs/ucla-short and
docs/runs/ucla-zero-shot: the summary that tools/reproduce.py recomputes from them must give those numbers, and the
page must state them as computed."""
import json
import os
import re
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tools'))
import reproduce  # noqa: E402

RUNS = os.path.join(ROOT, 'docs', 'runs', 'ucla-short')
ZERO_SHOT_RUNS = os.path.join(ROOT, 'docs', 'runs', 'ucla-zero-shot')
SPLITS = [os.path.join(ROOT, 'config', 'zero-shot', f'ucla-7-3-{s}.yaml') for s in 'abc']


@pytest.fixture(scope='module')
def summary(tmp_path_factory):
    out = tmp_path_factory.mktemp('summary')
    argv = ['--benchmark', 'ucla', '--streams', 'joint', '--arms', 'lst', 'control', 'lst_names', 'ctrgcn', '--seeds', '1', '2',
            '3', '4', '5', '6', '--schedule', 'short', '--head', 'all-MiniLM-L6-v2', '--out', RUNS, '--summary-only',
            '--summary-dir', str(out)]
    assert reproduce.main(argv) == 0
    return json.loads((out / 'summary.json').read_text())


@pytest.fixture(scope='module')
def page():
    with open(os.path.join(ROOT, 'docs', 'results.md')) as f:
        return re.sub(r'\s+', ' ', f.read())


def signed(value):
    return f'{value:+.2f}'


def test_the_pre_registered_outcome_is_what_the_kept_runs_give(summary, page):
    joint = summary['paired']['lst - control']['joint']
    differences = [r['last'] for r in joint['per_seed']]
    assert [r['seed'] for r in joint['per_seed']] == [4, 5, 6]
    for seed, lst, control, difference in zip((4, 5, 6), joint['arms']['lst']['last']['values'],
                                              joint['arms']['control']['last']['values'], differences):
        assert f'| {seed} | {lst:.2f} (' in page and f'| {control:.2f} (' in page and signed(difference) in page
    low, high = joint['last']['ci95']
    assert f'mean {signed(joint["last"]["mean"])} points (last epoch), 95% t-interval [{low:+.2f}, {high:+.2f}]' \
        in page
    doffing = summary['per_class']['lst - control']['joint']['classes'][7]
    assert doffing['name'] == 'doffing' and doffing['samples'] == 43
    for test, difference in zip(doffing['mcnemar'], doffing['per_seed']):
        assert f'{difference:+.1f} | {test["b"]} : {test["c"]} ({test["p"]:.2g})' in page


def test_the_ctrgcn_arm_and_its_unpaired_differences_are_what_the_kept_runs_give(summary, page):
    ctrgcn = summary['table']['ctrgcn/joint']
    assert ctrgcn['last']['n'] == 3
    for r in summary['runs']:
        if r['arm'] == 'ctrgcn' and r['status'] == 'done':
            assert f'| CTR-GCN, seed {r["seed"]} | {r["best"]:.2f} ({r["best_epoch"]}) | {r["last"]:.2f} |' in page
    assert f'{ctrgcn["best"]["mean"]:.2f} +- {ctrgcn["best"]["std"]:.2f} | ' \
           f'{ctrgcn["last"]["mean"]:.2f} +- {ctrgcn["last"]["std"]:.2f}' in page
    for comparison, name in (('lst - ctrgcn', 'LST - CTR-GCN'), ('control - ctrgcn', 'control - CTR-GCN')):
        cells = [f'{signed(t["mean"])}, 95% CI [{signed(t["ci95"][0])}, {signed(t["ci95"][1])}], p {t["p"]:.2f}'
                 for t in (summary['unpaired'][comparison]['joint'][kind] for kind in ('best', 'last'))]
        assert f'| {name} | {cells[0]} | {cells[1]} |' in page


def test_the_names_only_ablation_is_what_the_kept_runs_give(summary, page):
    for comparison in ('lst - lst_names', 'lst_names - control'):
        joint = summary['paired'][comparison]['joint']
        assert [r['seed'] for r in joint['per_seed']] == [4, 5, 6]
        for row, test in zip(joint['per_seed'], joint['mcnemar']['last']):
            assert f'{signed(row["last"])} ({test["b"]} : {test["c"]}, {test["p"]:.2g})' in page
        stat = joint['last']
        low, high = stat['ci95']
        assert f'{signed(stat["mean"])} +- {stat["std"]:.2f}, 95% CI [{signed(low)}, {signed(high)}], ' \
               f'p {stat["p"]:.2f}' in page
    names = summary['table']['lst_names/joint']['last']
    assert f'| {names["mean"]:.2f} +- {names["std"]:.2f} |' in page


@pytest.fixture(scope='module')
def zero_shot_summary(tmp_path_factory):
    out = tmp_path_factory.mktemp('zero_shot')
    argv = ['--protocol', *SPLITS, '--arms', 'lst', 'lst_names', '--seeds', '1', '2', '--shots', '0', '1', '5',
            '--schedule', 'short', '--head', 'all-MiniLM-L6-v2', '--out', ZERO_SHOT_RUNS, '--summary-only',
            '--summary-dir', str(out)]
    assert reproduce.main(argv) == 0
    return json.loads((out / 'summary.json').read_text())


def test_the_zero_shot_tables_are_what_the_kept_runs_give(zero_shot_summary, page):
    assert [r['status'] for r in zero_shot_summary['runs']] == ['done'] * 60
    for arm in ('lst', 'lst_names'):
        row = zero_shot_summary['table'][f'{arm}/joint']
        assert {stat['n'] for stat in row.values()} == {6}
        cells = [f'{s["mean"]:.2f} +- {s["std"]:.2f} [{s["ci95"][0]:.1f}, {s["ci95"][1]:.1f}]' for s in row.values()]
        assert f'| `{arm}` | ' + ' | '.join(cells) + ' |' in page
    for name, table in zero_shot_summary['paired'].items():
        for measure, stat in table.items():
            assert f'| {measure} | {signed(stat["mean"])} +- {stat["std"]:.2f} (n={stat["n"]}) | ' \
                   f'[{signed(stat["ci95"][0])}, {signed(stat["ci95"][1])}] | {stat["p"]:.2g} |' in page, (name, measure)


def test_the_scoring_rules_and_their_paired_differences_are_what_the_kept_runs_give(zero_shot_summary, page):
    for rule in zero_shot_summary['rules']['lst']:
        cells = []
        for arm in ('lst', 'lst_names'):
            for measure in ('zero_shot', 'harmonic'):
                stat = zero_shot_summary['rules'][arm][rule][measure]
                cell = f'{stat["mean"]:.2f} +- {stat["std"]:.2f}'
                difference = zero_shot_summary['rule_differences'][arm].get(rule)
                if difference:
                    low, high = difference[measure]['ci95']
                    cell += f' ({signed(difference[measure]["mean"])} [{signed(low)}, {signed(high)}])'
                cells.append(cell)
        assert f'| {rule} | ' + ' | '.join(cells) + ' |' in page, rule


def test_the_readme_states_the_zero_shot_numbers_as_computed(zero_shot_summary):
    with open(os.path.join(ROOT, 'README.md')) as f:
        readme = re.sub(r'\s+', ' ', f.read())
    lst = zero_shot_summary['table']['lst/joint']
    zero = lst['zero-shot top-1']
    assert f'{zero["mean"]:.2f} +- {zero["std"]:.2f}% top-1' in readme
    assert f'harmonic mean of {lst["harmonic mean"]["mean"]:.2f}' in readme
    assert f'reaches {lst["1-shot, text"]["mean"]:.2f}% ({lst["1-shot, random"]["mean"]:.2f}% from a random' in readme
    one_shot = zero_shot_summary['paired']['lst: text - random classifier']['1-shot']
    names = zero_shot_summary['paired']['lst - lst_names']['zero-shot top-1']
    for stat in (one_shot, names):
        low, high = stat['ci95']
        assert f'{stat["mean"]:+.1f} points' in readme and f'interval {low:+.1f} to {high:+.1f}' in readme
