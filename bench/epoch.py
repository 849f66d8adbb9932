"""The NTU RGB+D 120 X-Sub epoch from measured rates, and the performance goals, derived from a results dict.

An epoch = 63,026 training samples (drop_last batches of the config's 200) at the slower of the training step and the
DataLoader, plus the evaluation of the 50,919 test samples at the inference rate. Rates come from the train_step,
compile and feeder suites (generated data of the real shapes: 300 frames, 2 persons, 25 joints, window 64).
Goals: LST step <= 1.10x the CTR-GCN step; an LST epoch under a minute; the loader never the bottleneck; our
CTR-GCN's training step <= 0.67x the released CTR-GCN's and its inference <= 0.5x (where the release was timed).
"""
TRAIN, TEST, BATCH = 63_026, 50_919, 200
STEP_RATIO_GOAL, EPOCH_GOAL_S = 1.10, 60.0
RELEASE_GOALS = {'train step': 0.67, 'inference': 0.5}
LST = 'LST, frozen text bank'


def lst_steps(results):
    """(rows of the LST frozen-bank training step on NTU shapes): eager (any precision, channels-last) and compiled."""
    rows = results.get('train_step', {}).get('rows', []) + results.get('compile', {}).get('rows', [])
    return [r for r in rows if r['measure'].startswith('train step, ntu') and r['variant'].startswith(LST)]


def precision_of(measure):
    return measure.rsplit(', ', 1)[-1]


def best(rows, key='samples_per_s'):
    return max(rows, key=lambda r: r[key]) if rows else None


def epoch_rows(results):
    steps = lst_steps(results)
    loaders = [r for r in results.get('feeder', {}).get('rows', []) if r['variant'].startswith('DataLoader')]
    inference = [r for r in results.get('train_step', {}).get('rows', [])
                 if r['measure'].startswith('inference, ntu') and r['variant'].startswith('LST')
                 and 'released' not in r['variant']]
    if not (steps and loaders and inference):
        return []
    step, infer = best(steps), best(inference)
    rows = []
    for loader in loaders:
        rate = min(step['samples_per_s'], loader['samples_per_s'])
        train_s = (TRAIN // BATCH) * BATCH / rate
        eval_s = TEST / infer['samples_per_s']
        rows.append(dict(step=f'{step["variant"]} ({precision_of(step["measure"])})', loader=loader['variant'],
                         step_samples_per_s=step['samples_per_s'], loader_samples_per_s=loader['samples_per_s'],
                         bottleneck='loader' if loader['samples_per_s'] < step['samples_per_s'] else 'step',
                         train_s=train_s, eval_s=eval_s, epoch_s=train_s + eval_s,
                         under_a_minute=train_s + eval_s < EPOCH_GOAL_S))
    return rows


def step_ratios(rows):
    """(measure, LST variant, LST step / CTR-GCN step of the same kind: plain, channels-last or compiled)."""
    by = {(r['measure'], r['variant']): r for r in rows if r['measure'].startswith('train step')}
    for (measure, variant), r in by.items():
        base = by.get((measure, 'CTR-GCN' + variant[len(LST):])) if variant.startswith(LST) else None
        if base:
            yield measure, variant, r['median_s'] / base['median_s']


def release_goal_rows(rows):
    """Our CTR-GCN against the released one, in each measure where both were timed."""
    for r in rows:
        kind = r['measure'].split(',')[0]
        if r['variant'] == 'CTR-GCN' and 'vs_release' in r and kind in RELEASE_GOALS:
            goal = RELEASE_GOALS[kind]
            yield dict(goal=f'CTR-GCN {kind} <= {goal:.2f}x the released CTR-GCN', where=r['measure'],
                       measured=f'{r["vs_release"]:.3f}x', met=r['vs_release'] <= goal)


def goal_rows(results, epochs):
    rows = list(release_goal_rows(results.get('train_step', {}).get('rows', [])))
    for suite in ('train_step', 'compile'):
        for measure, variant, ratio in step_ratios(results.get(suite, {}).get('rows', [])):
            rows.append(dict(goal=f'LST step <= {STEP_RATIO_GOAL:.2f}x CTR-GCN step', where=f'{measure}: {variant}',
                             measured=f'{ratio:.3f}x', met=ratio <= STEP_RATIO_GOAL))
    if epochs:
        fastest = min(epochs, key=lambda r: r['epoch_s'])
        rows.append(dict(goal='NTU-120 X-Sub LST epoch < 1 min', where=f'{fastest["step"]}; {fastest["loader"]}',
                         measured=f'{fastest["epoch_s"]:.1f} s', met=fastest['under_a_minute']))
        for r in epochs:
            rows.append(dict(goal='loader not the bottleneck', where=r['loader'],
                             measured=f'{r["loader_samples_per_s"]:.0f} vs {r["step_samples_per_s"]:.0f} samples/s',
                             met=r['bottleneck'] == 'step'))
    return rows


def derive(results):
    """{'ntu120_epoch': ..., 'goals': ...} sections (rows and notes), from what the suites measured."""
    epochs = epoch_rows(results)
    note = (f'{TRAIN:,} training samples in batches of {BATCH} at the slower of step and loader, plus {TEST:,} test '
            f'samples at the fastest LST inference rate; the shapes of the measured rows are the ones used')
    return {'ntu120_epoch': dict(rows=epochs, notes=[note] if epochs else
                                 ['not derived: needs the NTU train step, NTU inference and DataLoader rows']),
            'goals': dict(rows=goal_rows(results, epochs), notes=[])}
