"""Zero-shot and few-shot LST (issue 33): new classes scored by their descriptions in a trained model's text space,
the seen/unseen protocol that never lets an unseen class reach training, K-shot training from the text, the
protocol configs and tools/reproduce.py --protocol."""
import glob
import json
import os
import shutil

import numpy as np
import pytest
import torch

import zero_shot_data as stick
from bad_inputs import command, fails
from engine import main as engine_main
from engine.args import load_config, parse_args
from feeders import tools
from lstbase import zero_shot
from preprocess import synthetic
from tools_helpers import ROOT, seeded_weights, ucla_config

import predict  # noqa: E402  (tools/ is on the path through tools_helpers)
import reproduce_protocol  # noqa: E402

PROTOCOLS = os.path.join(ROOT, 'config', 'zero-shot')


def train(*argv):
    engine_main(None, [str(a) for a in argv])


def last_weights(work_dir):
    return max(glob.glob(os.path.join(str(work_dir), 'runs-*.pt')), key=lambda p: int(p.split('-')[-2]))


def test_held_out_samples_are_the_same_whatever_the_classes_or_shots_seed():
    names = [f's{i}' for i in range(60)]
    labels = [i % 3 for i in range(60)]

    def kept(**selection):
        keep, new = tools.Selection.of(selection).apply(names, labels)
        return [names[i] for i in keep], new
    rest, _ = kept(classes=[2, 0], hold_out=0.2)
    held, relabelled = kept(classes=[2, 0], hold_out=0.2, held_out_only=True)
    assert not set(rest) & set(held) and len(held) == 8 and sorted(set(relabelled)) == [0, 1]
    assert set(held) == set(kept(hold_out=0.2, held_out_only=True)[0]) - set(kept(classes=[1])[0])
    assert all(labels[names.index(n)] == [2, 0][k] for n, k in zip(held, relabelled))
    one, two = kept(classes=[1], shots=3, shots_seed=1)[0], kept(classes=[1], shots=3, shots_seed=2)[0]
    assert len(one) == 3 and one == kept(classes=[1], shots=3, shots_seed=1)[0] and one != two
    with pytest.raises(ValueError, match='shots 30: class 1 has 20'):
        kept(classes=[1], shots=30)
    with pytest.raises(TypeError, match="unknown feeder argument.*'shot'"):
        tools.Selection.of(dict(shot=1), only=True)


def test_calibrated_stacking_sends_the_unseen_share_of_held_out_seen_samples_to_unseen():
    rng = np.random.default_rng(0)
    seen, unseen = [0, 1, 2], [3]
    held_out = rng.normal(size=(400, 4))
    held_out[:, seen] += 1                                   # a model favours the classes it was trained on
    bias = zero_shot.stacking_bias(held_out, seen, unseen)
    moved = (held_out[:, seen].max(1) - bias < held_out[:, unseen].max(1)).mean()
    assert moved == pytest.approx(1 / 4, abs=0.01)
    scores = np.array([[5., 0, 0, 4.5], [0, 5, 0, 4.8], [4.6, 0, 0, 5]])   # labels 0, 3, 3
    found = zero_shot.generalised(scores, [0, 3, 3], seen, unseen, 0.3)
    assert (found['seen'], found['unseen']) == (1.0, 1.0) and found['harmonic'] == 1.0
    assert zero_shot.generalised(scores, [0, 3, 3], seen, unseen, 0.0)['unseen'] == 0.5
    # zero-shot top-1 ranks the unseen classes' samples among the unseen classes alone
    assert zero_shot.zero_shot_top1(np.array([[9., 2, 1], [9., 2, 1]]), [1, 2], [1, 2]) == 0.5


def test_the_scoring_rule_weighs_each_group_by_its_scale():
    cosines = np.zeros((1, 5, 2))
    cosines[0, 0] = [1, 0]                                   # the name group says class 0
    cosines[0, 1:] = [0, 0.5]                                # the four parts say class 1, less surely
    assert zero_shot.combine(cosines, np.ones(5)).argmax() == 1
    assert zero_shot.combine(cosines, np.array([5., 1, 1, 1, 1])).argmax() == 0
    assert zero_shot.combine(cosines, np.ones(5), 'name only (global feature)').argmax() == 0


def test_the_summary_pairs_each_scoring_rule_with_the_one_used_run_by_run():
    def run(arm, used, parts):
        others = {rule: dict(zero_shot=used, harmonic=used) for rule in zero_shot.RULES}
        others['parts only'] = dict(zero_shot=parts, harmonic=used - 1)
        return dict(arm=arm, alternatives=others)
    records = [run('lst', 60, 70), run('lst', 40, 44), run('lst_names', 50, 0), dict(arm='lst', shots=1)]
    parts = reproduce_protocol.rule_differences(records, 'lst')['parts only']
    assert parts['zero_shot']['values'] == [10, 4] and parts['zero_shot']['mean'] == 7
    assert parts['harmonic']['values'] == [-1, -1] and parts['harmonic']['p'] is None
    assert zero_shot.RULE not in reproduce_protocol.rule_differences(records, 'lst')


def test_a_protocol_config_takes_its_base_and_trains_on_the_seen_classes():
    args = parse_args(None, ['--config', os.path.join(PROTOCOLS, 'ucla-7-3-a.yaml'), '--model-args',
                             "{'head': ['all-MiniLM-L6-v2']}"])
    assert args.model == 'model.ctrgcn.Model_lst_4part_ucla' and args.base_lr == 0.2      # from the base
    assert args.classes == [1, 2, 3, 4, 5, 7, 9] and args.model_args['num_class'] == 7
    assert args.train_feeder_args['classes'] == args.test_feeder_args['classes'] == args.classes
    assert args.train_feeder_args['hold_out'] == 0.1 and args.model_args['head'] == ['all-MiniLM-L6-v2']


@pytest.mark.parametrize('name', sorted(os.path.basename(p) for p in glob.glob(os.path.join(PROTOCOLS, '*.yaml'))))
def test_every_protocol_config_names_its_split(name):
    args = parse_args(None, ['--config', os.path.join(PROTOCOLS, name)])
    total = {'ntu60': 60, 'ntu120': 120, 'ucla': 10}[args.dataset]
    seen, unseen = name.split('-')[-3:-1] if 'smie' in name else name.split('-')[-2:]
    if 'ucla' not in name:
        assert (len(args.classes), len(args.unseen_classes)) == (int(seen), int(unseen.split('.')[0]))
    assert sorted(args.classes + args.unseen_classes) == list(range(total))


def test_a_base_that_includes_itself_is_refused(tmp_path):
    (tmp_path / 'a.yaml').write_text('base: b.yaml\nseed: 2\n')
    (tmp_path / 'b.yaml').write_text('base: a.yaml\n')
    with pytest.raises(ValueError, match='includes itself'):
        load_config(str(tmp_path / 'a.yaml'))
    (tmp_path / 'b.yaml').write_text('seed: 1\nmodel_args: {num_class: 3, k: 1}\n')
    (tmp_path / 'a.yaml').write_text('base: b.yaml\nmodel_args: {k: 2}\n')
    assert load_config(str(tmp_path / 'a.yaml')) == dict(seed=1, model_args=dict(num_class=3, k=2))


def test_the_text_classifier_starts_as_the_name_groups_zero_shot_logits():
    from model.ctrgcn import Model_lst_4part_ucla
    from model.zero_shot import group_cosines, group_scales, text_classifier
    torch.manual_seed(0)
    model = Model_lst_4part_ucla(num_class=3, num_point=20, num_person=1, graph='graph.ucla.Graph',
                                 head=['all-MiniLM-L6-v2']).eval()
    features = torch.nn.functional.normalize(torch.randn(5, 3, 384), dim=-1)
    x = torch.randn(6, 3, 16, 20, 1)
    text_classifier(model, features, x)
    _, global_features, _, _ = model(x)
    norm = global_features['all-MiniLM-L6-v2'].norm(dim=1)
    # logits = scale x cosine x (each sample's norm / their mean): the name group's zero-shot logits, rescaled
    expected = group_scales(model)[0] * group_cosines(model, x, features)[:, 0] * (norm / norm.mean())[:, None]
    torch.testing.assert_close(model.logits(x), expected, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------------------------------ the stick figure
@pytest.fixture(scope='module')
def figure(tmp_path_factory):
    """LST trained on six of the stick figure's nine classes (seed 1, 8 epochs), its last epoch tested."""
    base = tmp_path_factory.mktemp('stick')
    ann = stick.write_dataset(str(base / 'stick.pkl'))
    config = stick.config(base / 'stick.yaml', ann, stick.write_descriptions(str(base / 'text')), base / 'bank',
                          num_epoch=8, step=[6])
    train('--config', config, '--work-dir', base / 'run', '--unseen-classes', *stick.UNSEEN, '--seed', 1)
    weights = last_weights(base / 'run')
    train('--config', base / 'run' / 'config.yaml', '--work-dir', base / 'run', '--phase', 'test', '--weights',
          weights)
    return dict(base=base, run=base / 'run', weights=weights, ann=ann, config=config)


@pytest.mark.slow
def test_unseen_classes_are_recognised_from_their_parts_words(figure):
    result = json.loads((figure['run'] / 'zero_shot.json').read_text())
    assert result['unseen'] == sorted(stick.UNSEEN) and result['samples']['unseen_test'] == 24
    # chance is 1/3; 15 or more of 24 right has probability below 0.01 by chance (8 right and an unseen class's
    # motions of each part seen in two trained classes: seeds 1-3 gave 24 of 24 at 8 and 15 epochs)
    assert result['zero_shot'] >= 0.6 > result['chance']['zero_shot']
    assert result['generalised']['unseen'] > 0 and set(result['alternatives']) == set(zero_shot.RULES)


@pytest.mark.slow
def test_predict_scores_new_classes_by_their_words_and_fuses_streams(figure, tmp_path, capsys):
    classes = stick.write_descriptions(str(tmp_path / 'new'), stick.UNSEEN)
    samples = [f'val_{label}_{i}' for label in stick.UNSEEN for i in range(8)]
    argv = ['--config', figure['run'] / 'config.yaml', '--weights', figure['weights'], '--input', figure['ann'],
            '--samples', *samples, '--classes-text-dir', classes, '--format', 'json', '--top', '3']
    capsys.readouterr()
    assert predict.main([str(a) for a in argv]) == 0
    records = json.loads(capsys.readouterr().out)
    names = [stick.class_name(*stick.CLASSES[c]) for c in stick.UNSEEN]
    right = [r['top'][0]['name'] == names[stick.UNSEEN.index(int(r['sample'].split('_')[1]))] for r in records]
    assert len(records) == 24 and np.mean(right) >= 0.6 and all(r['true_label'] is None for r in records)
    copy = tmp_path / 'copy.pt'
    shutil.copyfile(figure['weights'], copy)
    fused = argv[:4] + ['--config', figure['run'] / 'config.yaml', '--weights', copy] + argv[4:]
    assert predict.main([str(a) for a in fused]) == 0
    twice = json.loads(capsys.readouterr().out)                          # joint + 1 x "bone": the scores doubled
    np.testing.assert_allclose([r['scores'] for r in twice], [2 * np.array(r['scores']) for r in records], rtol=1e-5)


@pytest.mark.slow
def test_few_shot_trains_the_unseen_classes_from_their_text_or_at_random(figure, tmp_path):
    runs = {}
    for init in ('text', 'random'):
        runs[init] = tmp_path / init
        train('--config', figure['config'], '--work-dir', runs[init], '--classes', *stick.UNSEEN, '--weights',
              figure['weights'], '--init-classifier', init, '--train-feeder-args',
              "{'shots': 5, 'shots_seed': 1, 'repeat': 2}", '--batch-size', 15, '--num-epoch', 1, '--base-lr',
              0.005)
        assert json.loads((runs[init] / 'metrics.json').read_text())['finished']
        log = (runs[init] / 'log.txt').read_text()
        assert ('The classifier of the 3 classes starts from their descriptions' in log) == (init == 'text')
    # after one epoch of two steps the text's classifier is where zero-shot scoring is (measured: 23 and 8 of 24)
    text, random = (json.loads((runs[k] / 'metrics.json').read_text())['history'][0]['val_acc']
                    for k in ('text', 'random'))
    assert text >= 0.6 and text > random


@pytest.mark.slow
def test_a_test_split_without_unseen_samples_is_one_line_before_anything_is_written(figure, tmp_path, capsys):
    from preprocess import annotations
    samples, split = annotations.load(figure['ann'])
    split['val'] = [name for name in split['val'] if int(name.split('_')[1]) not in stick.UNSEEN]
    annotations.save(str(tmp_path / 'seen_only.pkl'), samples, split)
    fails(capsys, train, '--config', figure['run'] / 'config.yaml', '--work-dir', tmp_path / 'test', '--phase',
          'test', '--weights', figure['weights'], '--test-feeder-args', f"{{'ann_file': '{tmp_path / 'seen_only.pkl'}'}}",
          match='the test split holds no sample of the unseen classes')
    assert not (tmp_path / 'test').exists()


# ------------------------------------------------------------------------------------------------ the poison test
@pytest.mark.slow
def test_nothing_of_an_unseen_class_reaches_training(tmp_path):
    """The unseen classes' files and description lines are made unreadable: training runs as it does without them,
    to the last bit of its weights."""
    unseen = [0, 6, 8]
    results = {}
    for kind in ('clean', 'poisoned'):
        data, text = tmp_path / kind / 'all_sqe', tmp_path / kind / 'text'
        synthetic.write_ucla(str(data), num_classes=10, per_class=12)
        shutil.copytree(os.path.join(ROOT, 'text'), text, ignore=lambda folder, names: [
            n for n in names if not n.startswith('ucla_')])
        if kind == 'poisoned':
            for path in glob.glob(str(data / '*.json')):
                if int(os.path.basename(path)[1:3]) in [synthetic.UCLA_ACTIONS[c] for c in unseen]:
                    open(path, 'w').write('poison: not a skeleton')
            for name in ('ucla_synonyms.txt', 'ucla_parts.txt'):
                lines = (text / name).read_text().splitlines()
                (text / name).write_text('\n'.join('POISON' if k in unseen else line
                                                   for k, line in enumerate(lines)) + '\n')
        config = ucla_config(tmp_path / kind / 'cfg.yaml', str(data), 'model.ctrgcn.Model_lst_4part_ucla',
                             dict(num_class=10, head=['all-MiniLM-L6-v2']))
        train('--config', config, '--work-dir', tmp_path / kind / 'run', '--unseen-classes', *unseen, '--text-dir',
              text, '--num-epoch', 2)
        results[kind] = torch.load(last_weights(tmp_path / kind / 'run'), weights_only=True)
    assert results['clean'].keys() == results['poisoned'].keys()
    assert all(torch.equal(results['clean'][k], results['poisoned'][k]) for k in results['clean'])


# ------------------------------------------------------------------------------------------------ NTU protocols
def ntu_npz(path, present, seen, frames=20):
    """NTU-shaped data of the classes `present`: 6 training samples of a seen class (one held out), 2 of an unseen
    one, 2 test samples of each."""
    rng = np.random.default_rng(0)
    splits = {}
    for split in ('train', 'test'):
        labels = [c for c in present for _ in range((6 if c in seen else 2) if split == 'train' else 2)]
        x = np.zeros((len(labels), 24, 150), np.float32)
        x[:, :frames] = rng.normal(size=(len(labels), frames, 150))
        setup = 1 if split == 'train' else 2
        names = [f'S{setup:03d}C001P{i:03d}R001A{c + 1:03d}' for i, c in enumerate(labels)]
        splits.update({f'x_{split}': x, f'y_{split}': np.array(labels), f'sample_name_{split}': np.array(names)})
    np.savez(path, **splits)
    return str(path)


def short_descriptions(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / 'ntu120_label_map.txt').write_text('\n'.join(names) + '\n')
    (folder / 'ntu120_synonyms.txt').write_text('\n'.join(names) + '\n')
    (folder / 'ntu120_parts.txt').write_text('\n'.join(f'{n};head {n};hand {n};arm moves;hip still;leg {n};foot '
                                                       f'still' for n in names) + '\n')
    return folder


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(os.path.basename(p) for p in glob.glob(os.path.join(PROTOCOLS, 'ntu*.yaml'))))
def test_the_ntu_protocols_train_and_test_on_generated_data(name, tmp_path):
    config = os.path.join(PROTOCOLS, name)
    args = parse_args(None, ['--config', config])
    present = sorted(args.unseen_classes + args.classes[:3])
    data = ntu_npz(tmp_path / 'data.npz', present, args.classes)
    names = [line.strip() for line in open(os.path.join(ROOT, 'text', 'ntu120_label_map.txt'))]
    text = short_descriptions(tmp_path / 'text', names)
    feeder = "{'data_path': '%s', 'window_size': 16}" % data
    common = ['--text-dir', text, '--text-cache-dir', tmp_path.parent / 'ntu-bank', '--device', 'cpu',
              '--num-worker', 0]
    train('--config', config, '--work-dir', tmp_path / 'run', '--train-feeder-args', feeder, '--test-feeder-args',
          feeder, '--model-args', "{'head': ['all-MiniLM-L6-v2']}", '--num-epoch', 1, '--batch-size', 4,
          '--test-batch-size', 8, *common)
    train('--config', tmp_path / 'run' / 'config.yaml', '--work-dir', tmp_path / 'run', '--phase', 'test',
          '--weights', last_weights(tmp_path / 'run'), *common)
    result = json.loads((tmp_path / 'run' / 'zero_shot.json').read_text())
    assert result['unseen'] == args.unseen_classes and result['samples'] == dict(
        unseen_test=2 * len(args.unseen_classes), seen_test=6, held_out=3)
    assert 0 <= result['zero_shot'] <= 1 and len(result['class_names']) == {'ntu60': 60, 'ntu120': 120}[args.dataset]


# ------------------------------------------------------------------------------------------------ refusals
@pytest.mark.slow
def test_a_model_without_text_is_refused_in_one_line(tmp_path, capsys):
    data = tmp_path / 'all_sqe'
    synthetic.write_ucla(str(data), num_classes=10, per_class=3)
    config = ucla_config(tmp_path / 'ctrgcn.yaml', str(data), 'model.ctrgcn.Model', dict(num_class=10))
    weights = seeded_weights(config, tmp_path / 'ctrgcn.pt')
    classes = stick.write_descriptions(str(tmp_path / 'classes'))
    fails(capsys, predict.main, ['--config', config, '--weights', weights, '--input', str(data),
                                 '--classes-text-dir', classes], match='has no text space')
    fails(capsys, train, '--config', config, '--work-dir', tmp_path / 'run', '--unseen-classes', 0, 1,
          match=['--unseen-classes needs a model trained with text', 'CTR-GCN'])
    assert not (tmp_path / 'run').exists()


# ------------------------------------------------------------------------------------------------ reproduce.py
@pytest.mark.slow
def test_reproduce_runs_a_protocol_and_resumes(tmp_path):
    argv = [os.path.join(ROOT, 'tools', 'reproduce.py'), '--protocol', os.path.join(PROTOCOLS, 'ucla-7-3-a.yaml'),
            '--arms', 'lst', '--seeds', 1, '--shots', 0, 1, '--schedule', 'quick', '--text-cache-dir',
            tmp_path / 'bank', '--out', tmp_path / 'out']
    first = command(argv, timeout=3600)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    summary = json.loads((tmp_path / 'out' / 'summary.json').read_text())
    assert [r['status'] for r in summary['runs']] == ['done'] * 3
    row = summary['table']['lst/joint']
    assert row['zero-shot top-1']['n'] == 1 and set(row) == {'zero-shot top-1', 'generalised seen',
                                                             'generalised unseen', 'harmonic mean', '1-shot, text',
                                                             '1-shot, random'}
    assert summary['chance']['zero-shot top-1'] == pytest.approx(100 / 3) and 'lst: text - random classifier' in \
        summary['paired']
    again = command(argv, timeout=600)
    assert again.returncode == 0 and 'chains of runs to go on with' not in again.stdout
    assert json.loads((tmp_path / 'out' / 'summary.json').read_text())['runs'] == summary['runs']
    # the small files exported, and the same summary made from them alone (no weights, no data)
    exported = command(argv + ['--summary-only', '--export-results', tmp_path / 'exported'], timeout=600)
    assert exported.returncode == 0, exported.stdout[-3000:] + exported.stderr[-3000:]
    assert not list((tmp_path / 'exported').rglob('*.pt'))
    remade = command(argv[:-1] + [tmp_path / 'exported', '--summary-only', '--summary-dir', tmp_path / 'remade'],
                     timeout=600)
    assert remade.returncode == 0, remade.stdout[-3000:] + remade.stderr[-3000:]
    assert json.loads((tmp_path / 'remade' / 'summary.json').read_text()) == summary
