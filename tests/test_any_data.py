"""Any skeleton data: pyskl's annotation format, the converters, declared layouts, a user's classes and descriptions,
and the one-line errors of a bad annotation file (issue: "Any skeleton data")."""
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

import ensemble
import pose_data
import tiny_ntu
from engine import main as train_main
from engine.args import parse_args
from feeders import feeder_ntu, feeder_pose, feeder_ucla
from preprocess import annotations, convert, synthetic
from shared_data import REAL_UCLA, needs_nw_ucla
from text import describe
from torchlight import import_class

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def train(*argv):
    train_main(None, [str(a) for a in argv])


@pytest.fixture(scope='module')
def ucla(tmp_path_factory):
    """Generated NW-UCLA files, converted to the annotation format, and the same seen as 2-D COCO-17."""
    base = tmp_path_factory.mktemp('any_data')
    synthetic.write_ucla(str(base / 'all_sqe'), num_classes=10, per_class=18)
    samples, split = convert.from_ucla(str(base / 'all_sqe'))
    annotations.save(str(base / 'ucla_3d.pkl'), samples, split)
    pose_data.write_coco_from_ucla(str(base / 'all_sqe'), str(base / 'coco.pkl'))
    pose_data.write_descriptions(str(base / 'text'))
    return base


# ------------------------------------------------------------------------------------------------ the format
def pyskl_file(path, persons=2, joints=17, dims=2, frames=(30, 41, 25, 60), labels=(0, 1, 2, 3), dtype=np.float16):
    """A file shaped like pyskl's ntu60_hrnet.pkl: float16 keypoints, two persons, xsub_train / xsub_val splits."""
    rng = np.random.default_rng(0)
    found = []
    for i, (t, label) in enumerate(zip(frames, labels)):
        annotation = dict(frame_dir=f'S001C001P00{i}R001A00{label + 1}', label=label, total_frames=t,
                          keypoint=(rng.random((persons, t, joints, dims)) * 500).astype(dtype))
        if dims == 2:
            annotation.update(img_shape=(1080, 1920), original_shape=(1080, 1920),
                              keypoint_score=rng.random((persons, t, joints)).astype(dtype))
        found.append(annotation)
    names = [a['frame_dir'] for a in found]
    with open(path, 'wb') as f:                         # as pyskl writes it (mmcv.dump: a plain pickle)
        pickle.dump(dict(split=dict(xsub_train=names[:3], xsub_val=names[3:]), annotations=found), f)
    return str(path)


@pytest.mark.parametrize('kind', ['hrnet', '3danno'])
def test_pyskl_shaped_files_load_with_the_pyskl_configs(tmp_path, kind):
    hrnet = kind == 'hrnet'
    path = pyskl_file(tmp_path / 'ntu60.pkl', joints=17 if hrnet else 25, dims=2 if hrnet else 3)
    config = os.path.join(ROOT, 'config', 'pyskl', f'ntu60_xsub_{kind}_lst_joint.yaml')
    args = parse_args(None, ['--config', config, '--train-feeder-args', f"{{'ann_file': '{path}'}}",
                             '--test-feeder-args', f"{{'ann_file': '{path}'}}",
                             '--model-args', "{'head': ['all-MiniLM-L6-v2']}"])
    assert args.dataset == 'ntu60' and args.loss_alpha == 0.8
    train_set = import_class(args.feeder)(**args.train_feeder_args)
    test_set = import_class(args.feeder)(**args.test_feeder_args)
    assert len(train_set) == 3 and test_set.sample_name == ['S001C001P003R001A004'] and test_set.label == [3]
    x, label, _ = test_set[0]
    assert x.shape == (3, 64, 17 if hrnet else 25, 2) and x.dtype == np.float32 and label == 3
    if hrnet:                                         # x, y in [-1, 1] (pixels / half the image), the score third
        assert np.abs(x[:2]).max() <= 1 and 0 <= x[2].min() and x[2].max() <= 1
    model = import_class(args.model)(**args.model_args)
    logits, *_ = model(torch.from_numpy(np.stack([train_set[i][0] for i in range(3)])))
    assert logits.shape == (3, 60)


def test_a_bare_list_reads_without_a_split_and_float16_stays_small(tmp_path):
    samples, _ = annotations.load(pyskl_file(tmp_path / 'a.pkl'))
    annotations.save(str(tmp_path / 'list.pkl'), samples)                 # custom_2d_skeleton.py's bare list
    feeder = feeder_pose.Feeder(str(tmp_path / 'list.pkl'), window_size=16, p_interval=[0.95])
    assert len(feeder) == 4 and feeder.samples[0][0].dtype == np.float16
    with pytest.raises(ValueError, match="split 'train' asked, but the file has no \"split\""):
        feeder_pose.Feeder(str(tmp_path / 'list.pkl'), split='train')


def test_a_crafted_annotation_file_runs_nothing(tmp_path):
    marker = tmp_path / 'ran'

    class Payload:
        def __reduce__(self):
            return os.system, (f'touch {marker}',)

    (tmp_path / 'evil.pkl').write_bytes(pickle.dumps(dict(annotations=[Payload()])))
    with pytest.raises(ValueError, match='refused to read it: it asks for posix.system'):
        feeder_pose.Feeder(str(tmp_path / 'evil.pkl'))
    assert not marker.exists()


def test_2d_bone_and_motion_average_the_scores_as_pyskl(tmp_path):
    path = pyskl_file(tmp_path / 'a.pkl')
    joint = feeder_pose.Feeder(path, 'xsub_val', window_size=16, p_interval=[1.0])[0][0]
    both = feeder_pose.Feeder(path, 'xsub_val', window_size=16, p_interval=[1.0], bone=True, vel=True)[0][0]
    bone = np.zeros_like(joint)
    for v, u in ((9, 7), (7, 5), (5, 0), (0, 0)):                       # wrist <- elbow <- shoulder <- nose
        bone[:2, :, v] = joint[:2, :, v] - joint[:2, :, u]
        bone[2, :, v] = (joint[2, :, v] + joint[2, :, u]) / 2
    expected = np.zeros_like(bone)
    expected[:2, :-1] = bone[:2, 1:] - bone[:2, :-1]
    expected[2, :-1] = (bone[2, 1:] + bone[2, :-1]) / 2
    for v in (9, 7, 5, 0):
        np.testing.assert_allclose(both[:, :, v], expected[:, :, v], atol=1e-6)


# ------------------------------------------------------------------------------------------------ converters
@pytest.mark.parametrize('split, modality', [('val', 'joint'), ('val', 'bone_motion'), ('train', 'bone')])
def test_nw_ucla_converted_gives_the_nw_ucla_feeders_arrays(ucla, split, modality):
    bone, motion = feeder_ucla.MODALITIES[modality]
    reference = feeder_ucla.Feeder(modality, split, root=str(ucla / 'all_sqe'))
    converted = feeder_pose.Feeder(str(ucla / 'ucla_3d.pkl'), split, layout='ucla', num_person=1, pipeline='ucla',
                                   window_size=52, random_view=split == 'train', bone=bone, vel=motion)
    assert converted.sample_name == reference.sample_name and list(converted.label) == list(reference.label)
    for i in range(0, len(reference), 7):
        torch.manual_seed(i)
        expected = reference[i][0]
        torch.manual_seed(i)
        np.testing.assert_array_equal(converted[i][0], expected)


@needs_nw_ucla
def test_real_nw_ucla_converted_gives_the_feeders_arrays(tmp_path):
    samples, split = convert.from_ucla(REAL_UCLA)
    assert len(split['train']) == 1020 and len(split['val']) == 464
    annotations.save(str(tmp_path / 'u.pkl'), samples, split)
    reference = feeder_ucla.Feeder('joint', 'val', root=REAL_UCLA)
    converted = feeder_pose.Feeder(str(tmp_path / 'u.pkl'), 'val', layout='ucla', num_person=1, pipeline='ucla',
                                   window_size=52)
    for i in range(0, 464, 23):
        np.testing.assert_array_equal(converted[i][0], reference[i][0])


def test_ntu_npz_converted_gives_the_ntu_feeders_arrays(tmp_path):
    rng = np.random.default_rng(0)
    (x_train, y_train, n_train), (x_test, y_test, n_test) = tiny_ntu.split(8, rng), tiny_ntu.split(4, rng)
    np.savez(tmp_path / 'NTU60_CS.npz', x_train=x_train, y_train=y_train, sample_name_train=n_train, x_test=x_test,
             y_test=y_test, sample_name_test=np.char.replace(n_test, 'P0', 'P1'))     # other performers: other names
    samples, split = convert.from_ntu_npz(str(tmp_path / 'NTU60_CS.npz'))
    assert sorted(split) == ['xsub_train', 'xsub_val'] and all(a['total_frames'] == 32 for a in samples)
    annotations.save(str(tmp_path / 'ntu.pkl'), samples, split)
    for split_name, npz_split, p_interval, rot in (('xsub_val', 'test', [0.95], False),
                                                    ('xsub_train', 'train', [0.5, 1], True)):
        args = dict(window_size=16, p_interval=p_interval, random_rot=rot, bone=True, vel=True)
        reference = feeder_ntu.Feeder(str(tmp_path / 'NTU60_CS.npz'), split=npz_split, **args)
        converted = feeder_pose.Feeder(str(tmp_path / 'ntu.pkl'), split_name, layout='ntu', **args)
        assert converted.sample_name == reference.sample_name
        for i in range(len(reference)):
            torch.manual_seed(i)
            expected = reference[i][0]
            torch.manual_seed(i)
            np.testing.assert_array_equal(converted[i][0], expected)


# ------------------------------------------------------------------------------------------------ training
# a short schedule on small inputs (one person, 32 frames), so that CI trains in about a minute
SHORT = ['--num-epoch', 8, '--step', 6, '--warm_up_epoch', 1, '--batch-size', 16, '--test-batch-size', 32,
         '--device', 'cpu', '--num-worker', 0]
SMALL = "'num_person': 1, 'window_size': 32"


def contract(work_dir, ann_file, text_dir, config='config/custom/lst_joint_2d.yaml', *more):
    """README's "Your own skeletons" command (with the offline text encoder, a short schedule, small inputs)."""
    return ['--config', os.path.join(ROOT, config), '--work-dir', work_dir,
            '--train-feeder-args', f"{{'ann_file': '{ann_file}', 'split': 'train', {SMALL}}}",
            '--test-feeder-args', f"{{'ann_file': '{ann_file}', 'split': 'val', {SMALL}}}",
            '--text-dir', text_dir, '--model-args', "{'num_class': 10, 'head': ['all-MiniLM-L6-v2'], 'num_person': 1}",
            '--text-cache-dir', os.path.join(os.path.dirname(work_dir), 'bank'), *SHORT, *more]


@pytest.mark.slow
def test_the_contract_trains_2d_coco_from_motion_above_chance(ucla, tmp_path):
    work = str(tmp_path / 'joint')
    train(*contract(work, ucla / 'coco.pkl', ucla / 'text'))
    metrics = yaml.safe_load(open(os.path.join(work, 'metrics.json')))
    assert metrics['finished'] and metrics['best_acc'] > 0.3                 # 10 classes: chance is 0.1
    log = open(os.path.join(work, 'log.txt')).read()
    assert 'custom_label_map.txt' in log and 'custom_parts.txt' in log         # the log names the files used
    with open(os.path.join(work, 'epoch1_test_score.pkl'), 'rb') as f:
        scores = pickle.load(f)                                                  # written by this test's run
    names, labels = feeder_pose.split_labels(str(ucla / 'coco.pkl'), 'val')
    assert sorted(scores) == sorted(names)                                       # keyed by frame_dir
    # the bone stream, then ensemble.py reads the labels from the annotation file (no --datasets)
    bone = str(tmp_path / 'bone')
    train(*contract(bone, ucla / 'coco.pkl', ucla / 'text', 'config/custom/lst_bone_2d.yaml'))
    top1, _ = ensemble.main(['--joint-dir', work, '--bone-dir', bone])
    assert top1 > 0.3
    # predict on the annotation file gives the test phase's scores
    result = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'predict.py'), '--config',
                             os.path.join(work, 'config.yaml'), '--weights', os.path.join(work, 'best.pt'),
                             '--input', str(ucla / 'coco.pkl'), '--format', 'csv', '--top', '1'],
                            capture_output=True, text=True, timeout=1800,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 1 + len(names) + len(feeder_pose.split_labels(
        str(ucla / 'coco.pkl'), 'train')[0])


@pytest.mark.slow
def test_a_new_dataset_with_a_declared_layout_needs_no_code(ucla, tmp_path):
    """Seven keypoints of our own (a stick figure from NW-UCLA's joints), declared in the config with YAML anchors."""
    samples, split = annotations.load(str(ucla / 'ucla_3d.pkl'))
    keep = [3, 2, 0, 7, 11, 15, 19]                    # head, shoulders centre, hips, hands, feet (0-based)
    for sample in samples:
        sample['keypoint'] = sample['keypoint'][:, :, keep].astype(np.float32)
    annotations.save(str(tmp_path / 'stick.pkl'), samples, split)
    config = tmp_path / 'stick.yaml'
    config.write_text(f"""dataset: custom
feeder: feeders.feeder_pose.Feeder
train_feeder_args:
  ann_file: {tmp_path / 'stick.pkl'}
  split: train
  num_person: 1
  window_size: 24
  p_interval: [0.5, 1]
  layout: &stick
    edges: [[0, 1], [2, 1], [3, 1], [4, 1], [5, 2], [6, 2]]
    center: 1
    groups: {{head: [0], hand: [3, 4], hip: [1, 2], foot: [5, 6]}}
test_feeder_args:
  ann_file: {tmp_path / 'stick.pkl'}
  split: val
  num_person: 1
  window_size: 24
  p_interval: [0.95]
  layout: *stick
model: model.ctrgcn.LSTModel
model_args:
  num_class: 10
  num_point: 7
  num_person: 1
  graph: graph.skeleton.Graph
  graph_args: {{layout: *stick}}
  head: [all-MiniLM-L6-v2]
base_lr: 0.1
step: [3]
warm_up_epoch: 1
num_epoch: 2
batch_size: 16
test_batch_size: 32
device: [cpu]
num_worker: 0
""")
    work = tmp_path / 'run'
    train('--config', config, '--work-dir', work, '--text-dir', ucla / 'text', '--text-cache-dir', tmp_path / 'bank')
    metrics = yaml.safe_load(open(work / 'metrics.json'))
    assert metrics['finished'] and len(metrics['history']) == 2
    saved = yaml.safe_load(open(work / 'config.yaml'))
    assert saved['model_args']['graph_args']['layout']['center'] == 1       # the declared layout is in the record


# ------------------------------------------------------------------------------------------------ mistakes
def write(tmp_path, name, content):
    with open(tmp_path / name, 'wb') as f:
        pickle.dump(content, f)
    return tmp_path / name


def coco(tmp_path, **change):
    samples, split = annotations.load(pyskl_file(tmp_path / 'base.pkl'))
    samples[1].update(change)
    return write(tmp_path, 'changed.pkl', dict(split=dict(train=[a['frame_dir'] for a in samples[:2]],
                                                          val=[a['frame_dir'] for a in samples[2:]]),
                                               annotations=samples))


@pytest.mark.parametrize('make, message', [
    (lambda p: write(p, 'x.pkl', {'keypoints': []}), "expected pyskl's annotation format"),
    (lambda p: write(p, 'x.pkl', ['not a dict']), 'must be a list of dicts'),
    (lambda p: coco(p, keypoint=np.zeros((1, 9, 25, 2))), '25 keypoints per person, but the layout has 17'),
    (lambda p: coco(p, keypoint=np.zeros((1, 9, 17, 3))), '3-D keypoints, but the config reads 2-D ones'),
    (lambda p: coco(p, keypoint=np.full((2, 41, 17, 2), np.nan)), 'keypoint holds NaN or Inf'),
    (lambda p: coco(p, label=10), 'label 10, outside 0..9'),
    (lambda p: coco(p, frame_dir='S001C001P000R001A001'), "frame_dir 'S001C001P000R001A001' appears twice"),
])
def test_a_bad_annotation_file_is_one_line_and_writes_nothing(tmp_path, capsys, make, message):
    path = make(tmp_path)
    text = tmp_path / 'text'
    pose_data.write_descriptions(str(text))
    with pytest.raises(SystemExit) as stop:
        from lstbase.errors import run
        run(train_main, None, [str(a) for a in contract(str(tmp_path / 'run'), path, text)])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1 and err[0].startswith('error: ') and message in err[0], err
    assert not (tmp_path / 'run').exists() or not os.listdir(tmp_path / 'run')


def batches_of_two(argv):
    """The command line `argv` (strings) with --batch-size 2 (a flag is given once)."""
    argv = [str(a) for a in argv]
    argv[argv.index('--batch-size') + 1] = '2'
    return argv


def test_a_missing_split_and_a_text_set_of_another_size_are_one_line(tmp_path, capsys):
    path = coco(tmp_path)
    text = tmp_path / 'text'
    pose_data.write_descriptions(str(text))
    from lstbase.errors import run
    argv = batches_of_two(contract(str(tmp_path / 'run'), path, text))
    argv[argv.index('--test-feeder-args') + 1] = f"{{'ann_file': '{path}', 'split': 'test'}}"
    with pytest.raises(SystemExit):
        run(train_main, None, argv)
    assert "no split 'test'; the file has 'train', 'val'" in capsys.readouterr().err
    (text / 'custom_label_map.txt').write_text('\n'.join(pose_data.CLASSES[:7]) + '\n')
    with pytest.raises(SystemExit):
        run(train_main, None, batches_of_two(contract(str(tmp_path / 'run2'), path, text)))
    assert 'custom_label_map.txt: 7 classes, expected 10' in capsys.readouterr().err
    assert not (tmp_path / 'run2').exists() or not os.listdir(tmp_path / 'run2')


# ------------------------------------------------------------------------------------------------ descriptions
def test_describe_turns_answers_into_files_the_loader_reads(tmp_path):
    names = ['wave', 'sit down']
    (tmp_path / 'map.txt').write_text('\n'.join(names) + '\n')
    asked = describe.prompts(names, 3)
    assert asked.count('### ') == 2 and 'head, hand, arm, hip, leg, foot' in asked
    answer = '\n'.join(f'### {n}\nSynonyms: {n} now, {n} again\n' + '\n'.join(f'{p.title()}: {p} moves'
                                                                            for p in describe.PARTS) for n in names)
    answers = describe.parse_answers('Here you are:\n' + answer, names, 'answers.txt')
    describe.write_set(names, answers, str(tmp_path / 'out'))
    from text.prompts import load_prompts
    prompts = load_prompts('custom', str(tmp_path / 'out'), 2)
    assert prompts.names == names and prompts.synonyms[1] == ['sit down', 'sit down now', 'sit down again']
    assert prompts.group(1)[0] == 'wave, head moves'
    with pytest.raises(describe.AnswerError, match="no answer for 1 class"):
        describe.parse_answers(answer.split('### sit down')[0], names, 'answers.txt')
