"""The summary of a reproduction (tools/reproduce.py): each run's record, the arms compared seed by seed
(tools/paired_stats.py), per stream, per fusion of streams and per class, written as summary.json, summary.md and
curves.png.

It reads only what the runs leave in their folders (metrics.json, exit.json, machine.txt, score files), so that
`reproduce.py --summary-only` remakes it anywhere, from an --export-results folder too.
"""
import os

import numpy as np

import ensemble
import specs
from engine.report import LAST_SCORE_FILE, SCORE_FILE, read_metrics
from lstbase.figures import pyplot, save_png
from lstbase.files import UnreadableFile, read_json, write_json, write_text
from lstbase.scores import top_k
from paired_stats import mcnemar, mean_std, paired_stat, t_test, top_confusion, welch
from text.prompts import class_names

STREAMS = ('joint', 'bone', 'joint_vel', 'bone_vel')
# the paired comparisons (first - second) summarised when both arms are run: they differ in one setting each
COMPARISONS = (('lst', 'control'), ('lst', 'lst_shuffled'), ('lst_shuffled', 'control'), ('lst', 'lst_names'),
               ('lst_names', 'control'), ('lst_te', 'lst'))
# unpaired comparisons (first - second): CTR-GCN has its own initial weights, data stream and recipe
UNPAIRED = (('lst', 'ctrgcn'), ('control', 'ctrgcn'))
ENSEMBLES = {2: ('joint', 'bone'), 3: ('joint', 'bone', 'joint_vel'), 4: STREAMS}
SCORE_FILES = {'best': SCORE_FILE, 'last': LAST_SCORE_FILE}          # the trainer's score files, per epoch kind
# in each run's folder, besides the trainer's files
MACHINE_FILE = 'machine.txt'               # the machine, PyTorch, jobs and threads it ran with
EXIT_FILE = 'exit.json'                    # how its last attempt ended, for --summary-only
# how a run's attempt ended when not with a return code (reproduce.execute)
STOPPED, NOT_STARTED = 'stopped at the time limit', 'not started (time limit)'
INTERRUPTED = 'interrupted'                # after Ctrl-C or SIGTERM
FOLDER_DELETED = 'failed: its folder was deleted while it ran'


# ---------------------------------------------------------------------------------------------------- runs
class Run:
    """One run of a reproduction, <out>/<arm>/<stream>/seed<k>, and what it recorded there."""

    def __init__(self, arm, stream, seed, out):
        self.arm, self.stream, self.seed = arm, stream, seed
        self.work_dir = os.path.join(out, arm, stream, f'seed{seed}')

    @property
    def name(self):
        return f'{self.arm}/{self.stream}/seed{self.seed}'

    def relocated(self, out):
        """The same run in another --out (an --export-results folder)."""
        return Run(self.arm, self.stream, self.seed, out)

    def metrics(self):
        """The trainer's metrics.json; None when there is none. One cut short or without the trainer's keys raises
        UnreadableFile."""
        return read_metrics(self.work_dir)

    def finished(self, num_epoch):
        try:
            metrics = self.metrics()
        except UnreadableFile:              # trained again: the trainer rewrites it from its checkpoint
            return False
        return bool(metrics and metrics['finished'] and metrics['num_epoch'] == num_epoch)

    def exit_record(self):
        """How execute saw this run's last attempt end: returncode, failed, reason; None when never executed."""
        path = os.path.join(self.work_dir, EXIT_FILE)
        return read_json(path, ('returncode', 'failed', 'reason')) if os.path.exists(path) else None

    def last_log_line(self):
        path = os.path.join(self.work_dir, 'console.log')
        if not os.path.exists(path):
            return ''
        with open(path, errors='replace') as f:
            lines = [line.strip() for line in f.read().replace('\r', '\n').splitlines() if line.strip()]
        return lines[-1] if lines else ''


# ---------------------------------------------------------------------------------------------------- summary
def fmt(stat, digits=2, signed=False):
    """mean +- std (n, the 95% t-interval and the t-test's p when `stat` has them); '-' for None."""
    if stat is None:
        return '-'
    mean = f'{stat["mean"]:{"+" if signed else ""}.{digits}f}'
    if stat['n'] == 1:
        return f'{mean} (n=1)'
    ci = f', 95% CI [{stat["ci95"][0]:+.{digits}f}, {stat["ci95"][1]:+.{digits}f}]' if 'ci95' in stat else ''
    p = f', p {p_text(stat["p"])}' if stat.get('p') is not None else ''
    return f'{mean} +- {stat["std"]:.{digits}f} (n={stat["n"]}{ci}{p})'


def p_text(p):
    return '-' if p is None else f'{p:.2g}'


def signed(value):
    return '-' if value is None else f'{value:+.2f}'


def run_record(run, num_epoch, returncode=None):
    """A run's line of the summary: its status (done, failed, unreadable, incomplete, not run), curve and wall time,
    and why when there is a reason. `returncode`: what execute returned in this process (None: not run here). Paths
    are relative to --out, so that a summary does not depend on where the folder lies (--export-results)."""
    record = dict(arm=run.arm, stream=run.stream, seed=run.seed, epochs_done=0, curve=[], wall_s=0.0)
    try:
        metrics, exit_record = run.metrics() or {}, run.exit_record()
    except UnreadableFile as exc:
        return dict(record, status='unreadable', reason=str(exc).replace(run.work_dir, run.name))
    history = metrics.get('history', [])
    record.update(epochs_done=len(history), curve=[round(100 * h['val_acc'], 2) for h in history],
                  wall_s=round(sum(h.get('seconds', 0) for h in history), 1))
    if history and metrics['finished'] and metrics['num_epoch'] == num_epoch:
        return dict(record, status='done', best=round(100 * metrics['best_acc'], 2),
                    best_epoch=metrics['best_epoch'], last=record['curve'][-1])
    if returncode not in (None, NOT_STARTED) and not os.path.isdir(run.work_dir):
        return dict(record, status='failed', reason=f'its folder {run.name} was deleted during the reproduction')
    if exit_record and exit_record['failed']:
        return dict(record, status='failed', returncode=exit_record['returncode'], reason=exit_record['reason'])
    record['status'] = 'incomplete' if history else 'not run'
    if exit_record and exit_record['reason']:                    # e.g. stopped at the time limit
        record['reason'] = exit_record['reason']
    return record


class ScoreFiles:
    """The runs' score files, rows in the order of the test split's `names`. Predictions are kept once read (small);
    scores are read again for each fusion (on NTU, a file's scores are tens of MB)."""

    def __init__(self, names):
        self.names, self.predicted = names, {}

    def scores(self, run, score_file):
        """(scores, None), or (None, what is wrong, naming '<arm>/<stream>/seed<k>/<file>')."""
        path = os.path.join(run.work_dir, score_file)
        where = f'{run.name}/{score_file}'
        if not os.path.exists(path):
            return None, f'{where}: missing'
        try:
            return ensemble.load_scores_file(path, self.names), None
        except (OSError, ValueError) as exc:
            return None, str(exc).replace(path, where)

    def predictions(self, run, score_file):
        """(predicted class per test sample, None), or (None, what is wrong)."""
        key = run.name, score_file
        if key not in self.predicted:
            scores, why = self.scores(run, score_file)
            self.predicted[key] = (None if scores is None else scores.argmax(1)), why
        return self.predicted[key]


def paired_predictions(runs, stream, seeds, files, arms, score_file):
    """Over the seeds where both `arms` finished on `stream` and their `score_file`s read: each arm's predicted
    classes (an array [seed, sample]); `missing` names the score files of finished runs that did not read."""
    used, predicted, missing = [], {arm: [] for arm in arms}, []
    for seed in seeds:
        pair = [runs.get((arm, stream, seed)) for arm in arms]
        if not all(run is not None and run.finished_flag for run in pair):
            continue
        got = [files.predictions(run, score_file) for run in pair]
        gaps = [why for _, why in got if why]
        if gaps:
            missing += gaps
            continue
        for arm, (classes, _) in zip(arms, got):
            predicted[arm].append(classes)
        used.append(seed)
    return dict(arms=list(arms), seeds=used, score_file=score_file,
                predicted={arm: np.array(rows) for arm, rows in predicted.items()}, missing=missing)


def mcnemar_per_seed(pairs, labels):
    """McNemar's exact test of each seed on the whole test split: b = samples right in the first arm only, c = in
    the second only."""
    a, b = (pairs['predicted'][arm] for arm in pairs['arms'])
    return [dict(seed=seed, **mcnemar(x == labels, y == labels)) for seed, x, y in zip(pairs['seeds'], a, b)]


def per_class_paired(pairs, labels, class_names):
    """Per class, over the paired seeds of `pairs` (paired_predictions; summarize gives the last epoch's: no epoch
    chosen on the test split): each arm's top-1 (%) (`a`, `b`), a - b per seed with its paired t-test, the (test
    sample, seed) pairs that only one arm gets right (`a_only`, `b_only`), McNemar's exact test per seed within the
    class, and the class each arm most often predicts instead. None without a paired seed."""
    if not pairs['seeds']:
        return None
    labels = np.asarray(labels)
    first, second = (pairs['predicted'][arm] for arm in pairs['arms'])
    rows = [class_row(k, name, first[:, labels == k], second[:, labels == k], pairs, class_names)
            for k, name in enumerate(class_names) if (labels == k).any()]
    return dict(arms=pairs['arms'], seeds=pairs['seeds'], score_file=pairs['score_file'], classes=rows,
                missing=pairs['missing'])


def class_row(label, name, a_predicted, b_predicted, pairs, class_names):
    """One class's line of per_class_paired from each arm's predictions for its samples ([seed, sample])."""
    a, b = a_predicted == label, b_predicted == label
    per_seed = [round(100 * float(x.mean() - y.mean()), 2) for x, y in zip(a, b)]
    return dict(label=label, name=name, samples=int(a.shape[1]), pairs=int(a.size),
                a=round(100 * float(a.mean()), 2), b=round(100 * float(b.mean()), 2), per_seed=per_seed,
                mean=round(float(np.mean(per_seed)), 2), t_test=t_test(per_seed),
                a_only=int((a & ~b).sum()), b_only=int((~a & b).sum()),
                mcnemar=[dict(seed=seed, **mcnemar(x, y)) for seed, x, y in zip(pairs['seeds'], a, b)],
                a_confused=named(top_confusion(a_predicted, label, b_predicted), class_names),
                b_confused=named(top_confusion(b_predicted, label, a_predicted), class_names))


def named(confusion, class_names):
    return confusion and dict(confusion, name=class_names[confusion['label']])


def fused_arm(runs, arm, members, seeds, files, labels):
    """The released fusion of `members` (streams) of one arm, per seed, from the best and the last epoch's scores.
    A seed of which some member finished but not all, or whose score file did not read, is named in `missing`."""
    per_seed, missing = [], []
    for seed in seeds:
        member_runs = [runs[arm, stream, seed] for stream in members]
        unfinished = [run for run in member_runs if not run.finished_flag]
        if len(unfinished) == len(member_runs):         # nothing of this seed yet: the runs table says so
            continue
        if unfinished:
            missing += [f'{run.name}: not finished' for run in unfinished]
            continue
        row = dict(seed=seed)
        for key, score_file in SCORE_FILES.items():
            scores = [files.scores(run, score_file) for run in member_runs]
            gaps = [why for _, why in scores if why]
            missing += gaps
            row[key] = None if gaps else \
                round(100 * top_k(ensemble.fuse([s for s, _ in scores], 1.0), labels, 1), 2)
        per_seed.append(row)
    return dict(streams=list(members), weights=ensemble.weights_for(len(members), 1.0), per_seed=per_seed,
                best=mean_std([r['best'] for r in per_seed]), last=mean_std([r['last'] for r in per_seed]),
                missing=missing)


def paired_difference(by_seed, arms):
    """a - b per seed over the seeds both arms have (`by_seed`: arm -> seed -> {'best': top-1, 'last': top-1}, None
    where missing), its paired_stat, and each arm's mean over the same seeds (`arms`), so that the arms' means and
    their difference rest on the same n."""
    a, b = (by_seed[arm] for arm in arms)
    rows = [dict(seed=seed, **{key: difference(a[seed][key], b[seed][key]) for key in SCORE_FILES})
            for seed in a if seed in b]
    result = dict(per_seed=rows, **{key: paired_stat([r[key] for r in rows]) for key in SCORE_FILES})
    result['arms'] = {arm: {key: mean_std([by_seed[arm][r['seed']][key] for r in rows if r[key] is not None])
                            for key in SCORE_FILES} for arm in arms}
    return result


def difference(x, y):
    return None if x is None or y is None else round(x - y, 2)


def summarize(records, runs, benchmark, streams, arms, seeds, plan_text, labels, machine, data, text_dir=None):
    """summary.json: the runs (`runs`), each arm and stream over all its runs (`table`); per comparison 'a - b' the
    paired differences per stream (`paired`) and per fusion of streams (`fused_paired`), the per-class tables
    (`per_class`); each arm's fusions (`ensembles`); the unpaired comparisons with CTR-GCN (`unpaired`). Without test
    `labels`, nothing that reads score files."""
    done = [r for r in records if r['status'] == 'done']
    comparisons = [(a, b) for a, b in COMPARISONS if a in arms and b in arms]
    paired, per_class, fused, fused_paired = {}, {}, {}, {}
    if labels is None:
        for a, b in comparisons:
            paired[f'{a} - {b}'] = {stream: paired_difference(records_by_seed(done, stream, (a, b)), (a, b))
                                    for stream in streams}
    else:
        files, label_list = ScoreFiles(labels[0]), np.asarray(labels[1])
        names = class_names(specs.REPRODUCIBLE[benchmark].spec, int(np.max(label_list)) + 1, text_dir)
        for a, b in comparisons:
            key = f'{a} - {b}'
            paired[key], tables = compare_streams(done, runs, (a, b), streams, seeds, files, label_list, names)
            if tables:
                per_class[key] = tables
        sizes = [size for size, members in ENSEMBLES.items() if set(members) <= set(streams)]
        fused = {f'{arm}/{size}': fused_arm(runs, arm, ENSEMBLES[size], seeds, files, label_list)
                 for arm in arms for size in sizes}
        for a, b in comparisons:
            fused_paired[f'{a} - {b}'] = {str(size): compare_fusions(fused, (a, b), size) for size in sizes}
    unpaired = {f'{a} - {b}': compare_unpaired(done, (a, b), streams) for a, b in UNPAIRED if a in arms and b in arms}
    return dict(benchmark=benchmark, schedule=plan_text, data=data, machine=machine, runs=records,
                table=arm_table(done, arms, streams), paired=paired, fused_paired=fused_paired, per_class=per_class,
                ensembles=fused, unpaired=unpaired)


def records_by_seed(done, stream, arms):
    """arm -> seed -> the finished run's record on `stream`."""
    return {arm: {r['seed']: r for r in done if r['arm'] == arm and r['stream'] == stream} for arm in arms}


def compare_streams(done, runs, arms, streams, seeds, files, labels, class_names):
    """One comparison on each stream: stream -> the paired difference with McNemar's tests per seed and what was
    left out, and stream -> the per-class table (streams without a paired seed left out)."""
    paired, per_class = {}, {}
    for stream in streams:
        pairs = {kind: paired_predictions(runs, stream, seeds, files, arms, score_file)
                 for kind, score_file in SCORE_FILES.items()}
        paired[stream] = dict(paired_difference(records_by_seed(done, stream, arms), arms),
                              mcnemar={kind: mcnemar_per_seed(p, labels) for kind, p in pairs.items()},
                              missing=list(dict.fromkeys(pairs['best']['missing'] + pairs['last']['missing'])))
        table = per_class_paired(pairs['last'], labels, class_names)
        if table:
            per_class[stream] = table
    return paired, per_class


def compare_fusions(fused, arms, size):
    """The paired difference of the two arms' fusions of `size` streams."""
    members = fused[f'{arms[0]}/{size}']['streams']
    seeds = {arm: {r['seed']: r for r in fused[f'{arm}/{size}']['per_seed']} for arm in arms}
    return dict(streams=members, **paired_difference(seeds, arms))


def compare_unpaired(done, arms, streams):
    """stream -> best / last: the two arms' difference over all their finished runs (Welch), for streams both ran."""
    result = {}
    for stream in streams:
        groups = [[r for r in done if r['arm'] == arm and r['stream'] == stream] for arm in arms]
        if all(groups):
            result[stream] = {kind: welch(*[[r[kind] for r in group] for group in groups]) for kind in SCORE_FILES}
    return result


def arm_table(done, arms, streams):
    """Each arm and stream over all its finished runs (the paired sections use the paired seeds only)."""
    table = {}
    for arm in arms:
        for stream in streams:
            group = [r for r in done if r['arm'] == arm and r['stream'] == stream]
            table[f'{arm}/{stream}'] = dict(best=mean_std([r['best'] for r in group]),
                                            last=mean_std([r['last'] for r in group]),
                                            wall_s=mean_std([r['wall_s'] for r in group]))
    return table


def markdown(summary):
    s = summary
    lines = [f'# Reproduction: {s["benchmark"]}', '', data_line(s['data']), '', f'Schedule: {s["schedule"]}  ',
             *[f'Machine: {line}  ' for line in s["machine"] or ['no run started']], '',
             'Top-1 (%) on the test split, mean +- std over every finished run (sample std). "best" = the best epoch, '
             'as the release reports it (chosen on the test split); "last" = the last epoch.', '',
             '| arm / stream | best | last | wall time per run (min) |', '|---|---|---|---|']
    for key, row in s['table'].items():
        wall = row['wall_s']
        wall_text = '-' if wall is None else f'{wall["mean"] / 60:.1f}'
        lines.append(f'| {key} | {fmt(row["best"])} | {fmt(row["last"])} | {wall_text} |')
    for comparison, streams in s['paired'].items():
        lines += paired_markdown(comparison, streams, s['fused_paired'].get(comparison, {}))
    for comparison, streams in s['unpaired'].items():
        lines += unpaired_markdown(comparison, streams)
    for tables in s['per_class'].values():
        for stream, table in tables.items():
            lines += per_class_markdown(stream, table)
    if s['ensembles']:
        lines += ['', '## Ensembles (ensemble.py\'s fusion weights, as released)', '',
                  '| arm | streams | weights | best-epoch scores | last-epoch scores |', '|---|---|---|---|---|']
        for key, row in s['ensembles'].items():
            lines.append(f'| {key.split("/")[0]} | {" + ".join(row["streams"])} | {row["weights"]} | '
                         f'{fmt(row["best"])} | {fmt(row["last"])} |')
        missing = [why for row in s['ensembles'].values() for why in row['missing']]
        lines += ['', f'Seeds left out of a fusion: {"; ".join(missing)}.'] if missing else []
    lines += ['', '## Runs', '', '| run | status | best (epoch) | last | epochs | wall (min) |', '|---|---|---|---|---|---|']
    for r in s['runs']:
        name = f'{r["arm"]}/{r["stream"]}/seed{r["seed"]}'
        if r['status'] == 'done':
            lines.append(f'| {name} | done | {r["best"]:.2f} ({r["best_epoch"]}) | {r["last"]:.2f} | {r["epochs_done"]} '
                         f'| {r["wall_s"] / 60:.1f} |')
        else:
            why = f': `{r["reason"]}`' if r.get('reason') else ''
            lines.append(f'| {name} | {r["status"]}{why} | - | - | {r["epochs_done"]} | {r["wall_s"] / 60:.1f} |')
    return '\n'.join(lines) + '\n'


def data_line(data):
    samples = f', {data["test_samples"]} test samples' if data.get('test_samples') else ''
    if data['generated']:
        return (f'Data: **generated** (the quick schedule\'s small stand-in in the benchmark\'s format{samples}), '
                'not the real benchmark: these numbers test the tool, not the method.')
    return f'Data: the benchmark\'s own test split{samples}.'


def paired_markdown(comparison, streams, fused):
    """The paired differences of one comparison per stream and fusion, then McNemar's test per seed."""
    a, b = comparison.split(' - ')
    lines = ['', f'## Paired difference, {comparison} (same seed, weights and data stream)', '',
             f'Per seed {a} - {b}, best epoch (last epoch); mean +- std over seeds, the 95% t-interval of the mean '
             f'and the paired t-test\'s p; {a} and {b} over the same seeds; the seeds that 80% power would need '
             '(two-sided t-test at 5%, the observed mean taken as the true difference, the observed std as the '
             'spread).', '',
             f'| stream | per seed: best (last) | mean best | mean last | {a} / {b} on these seeds: best; last '
             f'| seeds for 80% power: best / last |', '|---|---|---|---|---|---|']
    rows = [(stream, row) for stream, row in streams.items()] + \
           [(f'fused {" + ".join(row["streams"])}', row) for row in fused.values()]
    for name, row in rows:
        per_seed = ', '.join(f'seed {r["seed"]}: {signed(r["best"])} ({signed(r["last"])})' for r in row['per_seed'])
        power = ' / '.join(str(row[key]['seeds_for_80_power'] or '-') if row[key] else '-' for key in SCORE_FILES)
        lines.append(f'| {name} | {per_seed or "-"} | {fmt(row["best"], signed=True)} | '
                     f'{fmt(row["last"], signed=True)} | {arms_text(row["arms"], (a, b))} | {power} |')
    tested = [(stream, row) for stream, row in streams.items() if 'mcnemar' in row]
    if tested:
        lines += ['', f'McNemar\'s exact test per seed on the test samples right in one arm only ({a} only : {b} '
                      'only, two-sided p), last epoch (best epoch):', '', '| stream | per seed |', '|---|---|']
        for stream, row in tested:
            best = {t['seed']: t for t in row['mcnemar']['best']}
            cells = [f'seed {t["seed"]}: {mcnemar_text(t)} ({mcnemar_text(best.get(t["seed"]))})'
                     for t in row['mcnemar']['last']]
            lines.append(f'| {stream} | {"; ".join(cells) or "-"} |')
    missing = [why for _, row in tested for why in row['missing']]
    return lines + (['', f'Left out (paired runs without their scores): {"; ".join(missing)}.'] if missing else [])


def unpaired_markdown(comparison, streams):
    """The unpaired differences of one comparison per stream."""
    if not streams:
        return []
    lines = ['', f'## Unpaired difference, {comparison} (own initial weights, data stream and recipe)', '',
             'Difference of the two arms\' means over all their finished runs, Welch\'s 95% t-interval and t-test '
             '(unequal variances); the seeds are not paired, so the seed-to-seed spread of both arms is in it.', '',
             '| stream | best | last |', '|---|---|---|']
    for stream, row in streams.items():
        lines.append(f'| {stream} | {welch_text(row["best"])} | {welch_text(row["last"])} |')
    return lines


def welch_text(test):
    n = f'n={test["n"][0]}/{test["n"][1]}'
    if test['ci95'] is None:
        return f'{signed(test["mean"])} ({n})'
    low, high = test['ci95']
    return f'{signed(test["mean"])} ({n}, 95% CI [{signed(low)}, {signed(high)}], p {p_text(test["p"])})'


def arms_text(arms, names):
    """'86.07 / 84.05 (n=3); 85.70 / 83.33 (n=3)': each arm's mean over the paired seeds, best; last."""
    parts = []
    for key in SCORE_FILES:
        a, b = (arms[name][key] for name in names)
        parts.append('-' if a is None else f'{a["mean"]:.2f} / {b["mean"]:.2f} (n={a["n"]})')
    return '; '.join(parts)


def mcnemar_text(test):
    return '-' if test is None else f'{test["b"]} : {test["c"]}, p {p_text(test["p"])}'


def per_class_markdown(stream, table, most=20):
    """The per-class table; past `most` classes, the `most` // 2 largest gains and losses (all in summary.json)."""
    rows = table['classes']
    shown = rows if len(rows) <= most else \
        sorted(rows, key=lambda r: -r['mean'])[:most // 2] + sorted(rows, key=lambda r: -r['mean'])[-(most // 2):]
    seeds = ', '.join(map(str, table['seeds']))
    a, b = table['arms']
    lines = ['', f'## Per class, {a} - {b}: {stream} (last-epoch scores, seeds {seeds})', '',
             f'Top-1 (%) per class, mean over seeds; the difference per seed and the paired t-test\'s p over seeds; '
             f'"{a} / {b} only": the (test sample, seed) pairs right in that arm only, then per seed with McNemar\'s '
             f'exact p; "says instead": the wrong class that arm predicts most often for the class\'s (sample, '
             f'seed) pairs, how often, and how often the other arm predicts it. With many classes, some differences '
             f'of one sign arise by chance: a class is a lead to follow, not a finding.', '']
    if len(shown) < len(rows):
        lines += [f'The {most // 2} largest gains and losses of {len(rows)} classes (every class: summary.json).', '']
    lines += [f'| class | samples | {a} | {b} | {a} - {b} per seed | mean | {a} / {b} only | t-test p | per seed '
              f'(McNemar p) | {a} says instead | {b} says instead |', '|---|---|---|---|---|---|---|---|---|---|---|']
    for r in shown:
        per_seed = ', '.join(f'{d:+.1f}' for d in r['per_seed'])
        tests = ', '.join(f'{t["b"]} : {t["c"]} ({p_text(t["p"])})' for t in r['mcnemar'])
        lines.append(f'| {r["label"]} {r["name"]} | {r["samples"]} | {r["a"]:.1f} | {r["b"]:.1f} | {per_seed} | '
                     f'{r["mean"]:+.1f} | {r["a_only"]} / {r["b_only"]} | {p_text(r["t_test"]["p"])} | {tests} | '
                     f'{confusion_text(r["a_confused"], b)} | {confusion_text(r["b_confused"], a)} |')
    if table['missing']:
        lines += ['', f'Left out: {"; ".join(table["missing"])}.']
    return lines


def confusion_text(confusion, other_arm):
    """'donning 23 (lst 1)': the class said instead, how often, and how often the other arm says it."""
    if confusion is None:
        return '-'
    return f'{confusion["name"]} {confusion["count"]} ({other_arm} {confusion["other_count"]})'


def plot_curves(summary, path, streams, arms):
    plt = pyplot()
    fig, axes = plt.subplots(1, len(streams), figsize=(5 * len(streams), 4), squeeze=False)
    for ax, stream in zip(axes[0], streams):
        for arm in arms:
            curves = [r['curve'] for r in summary['runs'] if r['arm'] == arm and r['stream'] == stream
                      and r['status'] == 'done']
            if not curves:
                continue
            length = min(len(c) for c in curves)
            data = np.array([c[:length] for c in curves])
            epochs = np.arange(1, length + 1)
            mean = data.mean(0)
            ax.plot(epochs, mean, marker='o' if length < 20 else None, label=f'{arm} (n={len(curves)})')
            if len(curves) > 1:
                ax.fill_between(epochs, data.min(0), data.max(0), alpha=0.2)
        ax.set_title(f'{summary["benchmark"]} {stream}: val top-1, mean and range over seeds', fontsize=9)
        ax.set_xlabel('epoch')
        ax.set_ylabel('top-1 (%)')
        if ax.lines:
            ax.legend()
    fig.tight_layout()
    save_png(fig, path)


def machines_used(runs):
    """The distinct machine lines the runs recorded, in order of first use ("unrecorded" for runs without one)."""
    lines = []
    for run in runs:
        path = os.path.join(run.work_dir, MACHINE_FILE)
        if os.path.exists(path):
            with open(path) as f:
                lines += [line.strip() for line in f if line.strip()]
        elif os.path.isdir(run.work_dir):
            lines.append(f'unrecorded ({run.name})')
    return list(dict.fromkeys(lines))


def write_summary(summary, folder, streams, arms):
    write_json(os.path.join(folder, 'summary.json'), summary)
    write_text(os.path.join(folder, 'summary.md'), markdown(summary))
    plot_curves(summary, os.path.join(folder, 'curves.png'), streams, arms)
    print(markdown(summary))
    print(f'written: {folder}/summary.md, summary.json, curves.png')
