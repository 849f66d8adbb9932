"""The seen/unseen protocol for tools/reproduce.py --protocol: its splits, its runs and their summary.

A protocol file (config/zero-shot/*.yaml) names a benchmark's LST config as its `base` and the `unseen_classes`.
Per split (protocol file), arm, stream and seed, a chain of ordinary training runs, each resuming by itself:
  <out>/<split>/<arm>/<stream>/seed<k>                 trained on the seen classes (--unseen-classes); its last
                                                       epoch's weights tested: zero_shot.json (zero-shot top-1,
                                                       generalised seen / unseen / harmonic mean)
  <out>/<split>/<arm>/<stream>/seed<k>-shot<K>-<init>  those weights trained on K samples of each unseen class (drawn
                                                       with the seed), the new classifier from the unseen classes'
                                                       descriptions (text) or random; its last epoch's top-1 on the
                                                       unseen classes' test samples
The summary pools every split and seed of an arm and stream: mean +- std, the 95% t-interval, chance beside them; the
pairs of arms, and text against random classifiers, seed by seed and split by split (tools/paired_stats.py); the
streams' zero-shot scores fused with ensemble.py's weights; each scoring rule (lstbase/zero_shot.py) and its paired
difference from the one used. It reads only what the runs leave in their folders.
"""
import glob
import os
import re
from dataclasses import dataclass

import numpy as np
import yaml

import ensemble
import specs
from engine.args import load_config
from lstbase import zero_shot
from lstbase.files import read_json, write_json, write_text
from lstbase.safe_load import load_pickle
from paired_stats import mean_std, paired_stat, with_ci
from reproduce_summary import Run, fmt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARMS = ('lst', 'lst_names', 'lst_shuffled')      # the arms that train a text space the weights files hold
INITS = ('text', 'random')
FEW_SHOT = dict(num_epoch=10, step=[8], warm_up_epoch=0, repeat=10)     # 100 steps of K x unseen samples
QUICK_FEW_SHOT = dict(num_epoch=2, step=[2], warm_up_epoch=0, repeat=2)
FEW_SHOT_LR = 0.1                                    # the fine-tuning's learning rate, of the config's base_lr
ZERO_SHOT_MEASURES = ('zero-shot top-1', 'generalised seen', 'generalised unseen', 'harmonic mean')
COMPARISONS = (('lst', 'lst_names'), ('lst', 'lst_shuffled'))


@dataclass(frozen=True)
class Split:
    name: str                  # the protocol file's name
    benchmark: str             # tools/reproduce.py's --benchmark key
    unseen: tuple


def read_split(path):
    """The Split of a protocol file, whose base must be a benchmark's LST config."""
    with open(path) as f:
        given = yaml.safe_load(f) or {}
    if not isinstance(given, dict) or set(given) != {'base', 'unseen_classes'}:
        raise ValueError(f'--protocol {path}: expected a protocol file holding `base` (a benchmark\'s LST config) and '
                         f'`unseen_classes` alone (config/zero-shot/)')
    load_config(path)                                         # the base exists and reads
    folder = os.path.relpath(os.path.dirname(os.path.abspath(os.path.join(os.path.dirname(path), given['base']))),
                             ROOT)
    found = [key for key, b in specs.REPRODUCIBLE.items() if os.path.normpath(b.config_dir) == folder]
    if not found:
        raise ValueError(f'--protocol {path}: base {given["base"]} is not in a benchmark\'s config folder')
    return Split(os.path.splitext(os.path.basename(path))[0], found[0], tuple(given['unseen_classes']))


def read_splits(paths):
    splits = [read_split(path) for path in paths]
    benchmarks = sorted({split.benchmark for split in splits})
    if len(benchmarks) > 1:
        raise ValueError(f'--protocol: the files are of several benchmarks ({", ".join(benchmarks)}); one at a time')
    if len({split.name for split in splits}) < len(splits):
        raise ValueError('--protocol: two files of one name; each split needs its own')
    return splits


def few_shot_plan(shots, unseen_count, schedule):
    """The few-shot runs' schedule: one batch of every drawn sample, FEW_SHOT's steps."""
    return dict(QUICK_FEW_SHOT if schedule == 'quick' else FEW_SHOT, batch_size=shots * unseen_count)


class ProtocolRun(Run):
    """One run of a split's chain (module docstring)."""

    def __init__(self, split, arm, stream, seed, out, shots=0, init=None):
        super().__init__(arm, stream, seed, os.path.join(out, split))
        self.split, self.shots, self.init = split, shots, init
        if shots:
            self.work_dir += f'-shot{shots}-{init}'

    @property
    def name(self):
        return f'{self.split}/{super().name}' + (f'-shot{self.shots}-{self.init}' if self.shots else '')

    def relocated(self, out):
        """The same run in another --out (an --export-results folder)."""
        return ProtocolRun(self.split, self.arm, self.stream, self.seed, out, self.shots, self.init)

    def last_weights(self, num_epoch):
        """The last epoch's weights file, or None."""
        found = glob.glob(os.path.join(glob.escape(self.work_dir), f'runs-{num_epoch}-*.pt'))
        return found[0] if found else None

    def zero_shot(self, num_epoch):
        """zero_shot.json when it was written for the last epoch's weights, else None. Without weights in the folder
        (an exported one) the file the test names must be the last epoch's by its name."""
        path = os.path.join(self.work_dir, 'zero_shot.json')
        if not os.path.exists(path):
            return None
        result = read_json(path, ('zero_shot', 'generalised', 'weights'))
        weights = self.last_weights(num_epoch)
        if weights:
            return result if os.path.abspath(result['weights']) == os.path.abspath(weights) else None
        return result if re.fullmatch(rf'runs-{num_epoch}-\d+\.pt', os.path.basename(result['weights'])) else None


# ---------------------------------------------------------------------------------------------------- summary
def record(run, num_epoch):
    """A run's line: its status and measures (%)."""
    line = dict(split=run.split, arm=run.arm, stream=run.stream, seed=run.seed, shots=run.shots, init=run.init)
    if not run.finished(num_epoch):
        exit_record = run.exit_record()
        failed = bool(exit_record and exit_record['failed'])
        return dict(line, status='failed' if failed else 'not done', reason=exit_record['reason'] if failed else '')
    if run.shots:
        return dict(line, status='done', measures={measure_name(run.shots, run.init):
                                                    round(100 * run.metrics()['history'][-1]['val_acc'], 2)})
    result = run.zero_shot(num_epoch)
    if result is None:
        return dict(line, status='not tested', reason='')
    return dict(line, status='done', measures=zero_shot_measures(result),
                alternatives={rule: {k: round(100 * v, 2) for k, v in m.items()}
                              for rule, m in result['alternatives'].items()})


def measure_name(shots, init):
    return f'{shots}-shot, {init}'


def zero_shot_measures(result):
    generalised = result['generalised']
    values = (result['zero_shot'], generalised['seen'], generalised['unseen'], generalised['harmonic'])
    return {name: round(100 * value, 2) for name, value in zip(ZERO_SHOT_MEASURES, values)}


def fused_records(runs, streams, splits, arms, seeds):
    """The streams' zero-shot scores fused (ensemble.py's weights) per split, arm and seed whose every stream is
    done: records of stream 'fused'."""
    found = []
    for split in splits:
        for arm in arms:
            for seed in seeds:
                members = [runs[split.name, arm, stream, seed, 0, None] for stream in streams]
                if all(member.finished_flag for member in members):
                    found.append(fused_record(members, split, arm, seed))
    return found


def fused_record(members, split, arm, seed):
    scores = [load_pickle(os.path.join(run.work_dir, 'zero_shot_scores.pkl'), 'zero-shot scores') for run in members]
    first = scores[0]
    streams = {part: [(s[part]['cosines'], s['scales']) for s in scores] for part in ('test', 'held_out')}
    result = zero_shot.report(streams['test'], first['test']['labels'], streams['held_out'], first['seen'],
                              first['unseen'], ensemble.weights_for(len(members)))
    return dict(split=split.name, arm=arm, stream='fused', seed=seed, shots=0, init=None, status='done',
                measures=zero_shot_measures(result))


def pooled(records, arm, stream):
    """measure -> mean +- std and 95% t-interval over the arm and stream's done splits and seeds."""
    values = {}
    for r in records:
        if r['arm'] == arm and r['stream'] == stream and r['status'] == 'done':
            for name, value in r['measures'].items():
                values.setdefault(name, []).append(value)
    return {name: with_ci(mean_std(v)) for name, v in values.items()}


def paired(records, pick_a, pick_b):
    """measure -> the paired difference a - b over the (split, seed, stream) units both have."""
    def by_unit(pick):
        units = {}
        for r in records:
            if r['status'] == 'done' and pick(r):
                units.setdefault((r['split'], r['seed'], r['stream']), {}).update(r['measures'])
        return units
    a, b = by_unit(pick_a), by_unit(pick_b)
    differences = {}
    for unit in sorted(set(a) & set(b), key=str):
        for name in (name for name in a[unit] if name in b[unit]):        # in the records' order: no set's
            differences.setdefault(name, []).append(round(a[unit][name] - b[unit][name], 2))
    return {name: paired_stat(values) for name, values in differences.items()}


def few_shot_records(records, arm, init):
    """The arm's done few-shot records of one classifier start, their measures named by K alone."""
    return [dict(r, measures={f'{r["shots"]}-shot': value for value in r['measures'].values()}) for r in records
            if r['arm'] == arm and r['init'] == init and r['status'] == 'done']


def comparisons(records, arms, inits):
    """'a - b' -> measure -> paired difference: pairs of arms, and text against random classifiers."""
    found = {f'{a} - {b}': paired(records, lambda r, a=a: r['arm'] == a, lambda r, b=b: r['arm'] == b)
             for a, b in COMPARISONS if a in arms and b in arms}
    if set(INITS) <= set(inits):
        for arm in arms:
            both = few_shot_records(records, arm, 'text') + few_shot_records(records, arm, 'random')
            found[f'{arm}: text - random classifier'] = paired(both, lambda r: r['init'] == 'text',
                                                              lambda r: r['init'] == 'random')
    return found


def rule_differences(records, arm):
    """rule -> zero_shot / harmonic -> the paired difference of that rule and RULE over the arm's tested runs (the
    same scores, combined another way)."""
    tested = [r['alternatives'] for r in records if r['arm'] == arm and r.get('alternatives')]
    return {rule: {k: paired_stat([round(run[rule][k] - run[zero_shot.RULE][k], 2) for run in tested])
                   for k in ('zero_shot', 'harmonic')} for rule in zero_shot.RULES if rule != zero_shot.RULE}


def chance(splits, classes, shots, inits):
    """measure -> chance (%), the mean over the splits: zero-shot and K-shot 1/|unseen|, generalised 1/`classes`."""
    unseen = float(np.mean([100 / len(s.unseen) for s in splits]))
    found = {ZERO_SHOT_MEASURES[0]: unseen}
    found.update({measure: 100 / classes for measure in ZERO_SHOT_MEASURES[1:]})
    found.update({measure_name(k, init): unseen for k in shots if k for init in inits})
    return found


def summarize(runs, plans, splits, opts, classes, machine_text, data):
    """summary.json: every run's record, the pooled table per arm and stream (and fused streams), per split, the
    paired comparisons, the scoring rules."""
    epochs = {key: plan['num_epoch'] for key, plan in plans.items()}
    records = [record(run, epochs[key]) for key, run in runs.items()]
    for key, run in runs.items():
        run.finished_flag = run.finished(epochs[key]) and (run.shots or run.zero_shot(epochs[key]))
    if len(opts.streams) > 1:
        records += fused_records(runs, opts.streams, splits, opts.arms, opts.seeds)
    streams = opts.streams + (['fused'] if len(opts.streams) > 1 else [])
    table = {f'{arm}/{stream}': pooled(records, arm, stream) for arm in opts.arms for stream in streams}
    per_split = {split.name: {f'{arm}/{stream}': pooled([r for r in records if r['split'] == split.name], arm,
                                                        stream) for arm in opts.arms for stream in streams}
                 for split in splits}
    rules = {arm: {rule: {k: mean_std([r['alternatives'][rule][k] for r in records if r['arm'] == arm
                                       and r.get('alternatives')]) for k in ('zero_shot', 'harmonic')}
                   for rule in zero_shot.RULES} for arm in opts.arms}
    return dict(benchmark=splits[0].benchmark, splits={s.name: list(s.unseen) for s in splits}, data=data,
                schedule=opts.schedule_text, machine=machine_text,
                chance=chance(splits, classes, opts.shots, opts.few_shot_init),
                table=table, per_split=per_split, paired=comparisons(records, opts.arms, opts.few_shot_init),
                rules=rules, rule_differences={arm: rule_differences(records, arm) for arm in opts.arms},
                runs=records)


def markdown(summary):
    s = summary
    columns = list(s['chance'])
    lines = [f'# Zero-shot protocol: {s["benchmark"]}, {len(s["splits"])} split(s)', '', s['data'], '',
             f'Schedule: {s["schedule"]}  ', *[f'Machine: {line}  ' for line in s['machine'] or ['no run started']],
             '', 'Unseen classes: ' + '; '.join(f'{name} {classes}' for name, classes in s['splits'].items()), '',
             'Top-1 (%), mean +- std over every done split and seed (n), with the 95% t-interval of the mean. '
             'Zero-shot: the unseen classes\' test samples against the unseen classes; generalised: every test '
             'sample against every class, the seen classes\' scores lowered by the bias chosen on held-out seen '
             'training samples; K-shot: the unseen classes\' test samples after training on K of each.', '']
    lines += table_lines(s['table'], columns, s['chance'])
    for name, table in s['per_split'].items():
        lines += ['', f'## Split {name}', ''] + table_lines(table, columns, s['chance'])
    for comparison, measures in s['paired'].items():
        lines += ['', f'## Paired difference, {comparison} (same split and seed)', '', '| measure | difference |',
                  '|---|---|'] + [f'| {name} | {fmt(stat, signed=True)} |' for name, stat in measures.items()]
    lines += ['', '## Scoring rules (zero-shot top-1; harmonic mean), mean +- std over splits and seeds', '',
              '| arm | ' + ' | '.join(zero_shot.RULES) + ' |', '|---|' + '---|' * len(zero_shot.RULES)]
    for arm, rules in s['rules'].items():
        lines.append(f'| {arm} | ' + ' | '.join(f'{fmt(r["zero_shot"])}; {fmt(r["harmonic"])}'
                                                 for r in rules.values()) + ' |')
    others = [rule for rule in zero_shot.RULES if rule != zero_shot.RULE]
    lines += ['', f'## Scoring rules minus "{zero_shot.RULE}" (the same runs; zero-shot top-1; harmonic mean)', '',
              '| arm | ' + ' | '.join(others) + ' |', '|---|' + '---|' * len(others)]
    for arm, differences in s['rule_differences'].items():
        lines.append(f'| {arm} | ' + ' | '.join(f'{fmt(d["zero_shot"], signed=True)}; {fmt(d["harmonic"], signed=True)}'
                                                 for d in differences.values()) + ' |')
    lines += ['', '## Runs', '', '| run | status |', '|---|---|']
    lines += [f'| {run_name(r)} | {r["status"]}{": " + r["reason"] if r.get("reason") else ""} |' for r in s['runs']
              if r['stream'] != 'fused']
    return '\n'.join(lines) + '\n'


def table_lines(table, columns, chances):
    lines = ['| arm / stream | ' + ' | '.join(columns) + ' |', '|---|' + '---|' * len(columns),
             '| chance | ' + ' | '.join(f'{chances[c]:.2f}' for c in columns) + ' |']
    for key, measures in table.items():
        lines.append(f'| {key} | ' + ' | '.join(fmt(measures.get(c)) for c in columns) + ' |')
    return lines


def run_name(r):
    return f'{r["split"]}/{r["arm"]}/{r["stream"]}/seed{r["seed"]}' + \
        (f'-shot{r["shots"]}-{r["init"]}' if r['shots'] else '')


def write(summary, folder):
    write_json(os.path.join(folder, 'summary.json'), summary)
    write_text(os.path.join(folder, 'summary.md'), markdown(summary))
    print(markdown(summary))
    print(f'written: {folder}/summary.md, summary.json')

