"""Every tool keeps every promise, on the data side (issue 31): a file the tool did not name as its output is never
replaced, a surprising input is refused or warned about instead of trained on in silence, and a bad file among many
is its own line while the rest go on.

Every case runs the real command on small generated data, as the user runs it.
"""
import os
import pickle
import shutil

import numpy as np
import pytest

import pose_data
import tiny_ntu
from bad_inputs import ROOT, Evil, command, config, digest, fails, refused, train
from preprocess import annotations, convert, synthetic, video
from test_video import FakeEstimator, extract_pose, needs_cv2, touch, using, write_video
from text import describe

import reproduce  # noqa: E402  (tools/ is on the path through test_video)
import visualize  # noqa: E402


def answers(names):
    return ''.join(f'### {n}\nSynonyms: {n} now\nHead: up\nHand: open\nArm: out\nHip: still\nLeg: bent\nFoot: flat\n'
                   for n in names)


def label_map(folder, names):
    """A label map and the LLM's answers for its classes in `folder`; (label map, answers)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / 'labels.txt').write_text(''.join(f'{name}\n' for name in names))
    (folder / 'answers.txt').write_text(answers(names))
    return str(folder / 'labels.txt'), str(folder / 'answers.txt')


def parse_argv(labels, answered, out, *more):
    return ['parse', '--label-map', labels, '--answers', answered, '--out', str(out), *more]


@pytest.fixture(scope='module')
def ws(tmp_path_factory):
    """Tiny NTU data (4 classes) and its descriptions, as tests/bad_inputs.py's workspace has them; generated
    NW-UCLA files (all_sqe), seen as 2-D COCO-17 (coco.pkl) and converted as they are (ucla_3d.pkl), with the
    descriptions of tests/pose_data.py (custom_text)."""
    base = tmp_path_factory.mktemp('promises_data')
    tiny_ntu.write_npz(str(base / 'data' / 'NTU60_CS.npz'), train=16, test=8)
    tiny_ntu.write_descriptions(base / 'text')
    synthetic.write_ucla(str(base / 'all_sqe'), num_classes=10, per_class=3)
    pose_data.write_coco_from_ucla(str(base / 'all_sqe'), str(base / 'coco.pkl'))
    annotations.save(str(base / 'ucla_3d.pkl'), *convert.from_ucla(str(base / 'all_sqe')))
    pose_data.write_descriptions(str(base / 'custom_text'))
    return base


def custom_argv(ws, work_dir, ann_file, dims=2, config_name='lst_joint', **feeder):
    """README's "Your own skeletons" command on a small file: one epoch of small batches and windows, one person
    (NW-UCLA's skeletons: 3-D ones in the ucla layout), the offline text encoder."""
    feeder = dict(dict(num_person=1, window_size=16), **feeder, **(dict(layout='ucla') if dims == 3 else {}))
    model = dict(num_class=10, head=['all-MiniLM-L6-v2'], num_person=1)
    if dims == 3:
        model.update(num_point=20, graph_args=dict(layout='ucla'))
    return ['--config', os.path.join(ROOT, 'config', 'custom', f'{config_name}_{dims}d.yaml'), '--work-dir', work_dir,
            '--train-feeder-args', repr(dict(feeder, ann_file=str(ann_file), split='train')),
            '--test-feeder-args', repr(dict(feeder, ann_file=str(ann_file), split='val')),
            '--text-dir', ws / 'custom_text', '--model-args', repr(model), '--text-cache-dir', ws / 'bank',
            '--num-epoch', 1, '--batch-size', 8, '--test-batch-size', 16, '--device', 'cpu', '--num-worker', 0,
            '--seed', 1]


def changed(ws, tmp_path, change, source='coco.pkl'):
    """The annotation file `source` with `change(samples, split)` made to it, written as any program would (not
    through annotations.save, which checks)."""
    samples, split = annotations.load(ws / source)
    change(samples, split)
    with open(tmp_path / source, 'wb') as f:
        pickle.dump(dict(split=split, annotations=samples), f)
    return tmp_path / source


def set_keypoint(index, value, where=(Ellipsis,)):
    def change(samples, split):
        keypoint = np.array(samples[index]['keypoint'], dtype=np.float32)
        keypoint[where] = value
        samples[index]['keypoint'] = keypoint
    return change


# ------------------------------------------------------------------------------------------------ data loss
def test_describe_keeps_a_set_of_other_classes_in_its_out_folder(tmp_path, capsys):
    shipped = tmp_path / 'text'
    shutil.copytree(os.path.join(ROOT, 'text'), shipped, ignore=shutil.ignore_patterns('*.py', '__pycache__'))
    labels, answered = label_map(tmp_path / 'mine', ['wave', 'clap', 'jump'])
    before = digest(shipped)
    fails(capsys, describe.main, parse_argv(labels, answered, shipped, '--set', 'ntu120'),
          match=[f'{shipped / "ntu120_label_map.txt"} exists with other class names (120 lines; line 1: '
                 "'drink water' there, 'wave' now)", 'choose another --out'])
    assert digest(shipped) == before
    # the same classes again (a second run, other descriptions): the set is rewritten
    mine = tmp_path / 'my_text'
    assert describe.main(parse_argv(labels, answered, mine)) == 0
    (tmp_path / 'mine' / 'answers.txt').write_text(answers(['wave', 'clap', 'jump']).replace('up', 'down'))
    assert describe.main(parse_argv(labels, answered, mine)) == 0
    assert 'head down' in (mine / 'custom_parts.txt').read_text()


@needs_cv2
def test_extract_pose_keeps_a_label_map_of_other_classes(tmp_path, monkeypatch, capsys):
    for name in ('jump', 'run'):
        write_video(tmp_path / 'videos' / name / f'{name}1.avi', frames=3)
    text = tmp_path / 'mytext'
    text.mkdir()
    (text / 'custom_label_map.txt').write_text('wave\nclap\njump\n')           # the user's, for their descriptions
    argv = ['--input', str(tmp_path / 'videos'), '--out', str(text / 'custom.pkl'), '--labels-from-folders']
    with using(FakeEstimator(), monkeypatch):
        fails(capsys, extract_pose.main, argv, match=[f'{text / "custom_label_map.txt"} exists with other class '
                                                      f"names (3 lines; line 1: 'wave' there, 'jump' now)",
                                                      'choose another --out'])
        assert sorted(os.listdir(text)) == ['custom_label_map.txt']
        (text / 'custom_label_map.txt').write_text('jump\nrun\n')                 # the same classes: a run again
        assert extract_pose.main(argv) == 0
    assert len(annotations.load(text / 'custom.pkl')[0]) == 2


# ------------------------------------------------------------------------------------------------ silent
def test_a_class_named_twice_is_refused_where_names_are_read(ws, tmp_path, capsys):
    labels, answered = label_map(tmp_path, ['wave', 'clap', 'Wave'])
    where = [f'{labels}, lines 1 and 3', "class 'Wave' twice"]
    fails(capsys, describe.main, ['prompts', '--label-map', labels], match=where)
    fails(capsys, describe.main, parse_argv(labels, answered, tmp_path / 'out'), match=where)
    assert not (tmp_path / 'out').exists()
    text = tmp_path / 'text'
    shutil.copytree(ws / 'text', text)
    names = (text / 'ntu120_label_map.txt').read_text().splitlines()
    for kind in ('label_map', 'synonyms', 'parts'):                  # class 4 is class 2 again, in every file
        lines = (text / f'ntu120_{kind}.txt').read_text().splitlines()
        (text / f'ntu120_{kind}.txt').write_text('\n'.join(lines[:3] + [lines[1]]) + '\n')
    fails(capsys, train, 'ntu', '--config', config(ws, tmp_path, text_dir=text), '--work-dir', tmp_path / 'run',
          match=[f'{text / "ntu120_label_map.txt"}, lines 2 and 4', f'class {names[1]!r} twice'])
    assert not (tmp_path / 'run').exists()


@pytest.mark.parametrize('separator', [';', ','])
def test_a_class_name_holding_a_separator_is_refused_up_front(tmp_path, capsys, separator):
    name = f'wave{separator} then clap'
    labels, answered = label_map(tmp_path, ['jump', name])
    where = [f'{labels}, line 2', f'class name {name!r} holds {separator!r}']
    fails(capsys, describe.main, ['prompts', '--label-map', labels], match=where)
    fails(capsys, describe.main, parse_argv(labels, answered, tmp_path / 'out'), match=where)
    assert not (tmp_path / 'out').exists()


def test_describe_errors_name_the_users_files_not_a_temporary_one(tmp_path, capsys):
    labels, answered = label_map(tmp_path, ['jump', 'wave'])
    (tmp_path / 'answers.txt').write_text(answers(['jump', 'wave']).replace('Head: up', 'Head: Head.'))
    fails(capsys, describe.main, parse_argv(labels, answered, tmp_path / 'out'),
          match=[f"{answered}, line 1: the answer for 'jump' has no head"])
    with open(os.path.join(ROOT, 'text', 'ucla_label_map.txt')) as f:
        reversed_classes = f.read().splitlines()[::-1]                          # the set's classes, reversed
    labels, answered = label_map(tmp_path / 'ucla', reversed_classes)
    fails(capsys, describe.main, parse_argv(labels, answered, tmp_path / 'out', '--set', 'ucla'),
          match=[f"{tmp_path / 'out' / 'ucla_label_map.txt'}, line 1: class name 'carry' does not match the label "
                 f"map's 'pick up with one hand'", 'as it would be written; nothing was'])
    assert not (tmp_path / 'out').exists()


def test_describe_set_is_a_description_set_name(tmp_path, capsys):
    labels, answered = label_map(tmp_path, ['jump', 'wave'])
    refused(capsys, describe.main, parse_argv(labels, answered, tmp_path / 'out', '--set', 'a/b'),
            match=["--set: invalid choice: 'a/b'", 'custom', 'ntu120', 'ucla'])
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('source, change, match', [
    ('coco.pkl', set_keypoint(0, 1e38), ["frame_dir 'a01_s01_e00_v01': keypoint 1e+38 (person 0, frame 0, joint 0, x) "
                                         'is beyond +-10 x the image width (6400 px; img_shape (480, 640))']),
    ('coco.pkl', set_keypoint(4, -1e30, (0, 3, 5, 1)), ['keypoint -1e+30 (person 0, frame 3, joint 5, y) is beyond '
                                                        '+-10 x the image height (4800 px']),
    ('ucla_3d.pkl', set_keypoint(2, 2e5, (0, 1, 7, 2)), ['keypoint 200000 (person 0, frame 1, joint 7, z) is beyond '
                                                         '+-100000']),
])
def test_absurd_coordinates_are_refused_with_their_bound(ws, tmp_path, capsys, source, change, match):
    path = changed(ws, tmp_path, change, source)
    fails(capsys, train, None, *custom_argv(ws, tmp_path / 'run', path, dims=3 if '3d' in source else 2),
          match=[str(path)] + match)
    assert not (tmp_path / 'run').exists()


def test_total_frames_must_be_the_keypoints_frames(ws, tmp_path, capsys):
    def change(samples, split):
        samples[3]['total_frames'] = 999
    path = changed(ws, tmp_path, change)
    frames = annotations.load(ws / 'coco.pkl')[0][3]['keypoint'].shape[1]
    fails(capsys, train, None, *custom_argv(ws, tmp_path / 'run', path),
          match=[f"{path}, frame_dir 'a02_s01_e00_v02': total_frames 999, but keypoint holds {frames} frames"])


def warnings_of(stderr):
    return [line for line in stderr.splitlines() if line.startswith('warning: ')]


@pytest.mark.parametrize('change, expected', [
    (lambda samples, split: samples[1].pop('keypoint_score'),
     "coco.pkl: 1 of 30 samples have 2-D keypoints without keypoint_score (e.g. frame_dir 'a01_s01_e00_v02'): their "
     "scores are taken as 1.0"),
    (lambda samples, split: samples[5].update(keypoint=np.zeros((0, samples[5]['total_frames'], 17, 2), np.float32),
                                              keypoint_score=np.zeros((0, samples[5]['total_frames'], 17))),
     "coco.pkl: 1 of 30 samples hold nobody (keypoint M = 0, e.g. frame_dir 'a03_s01_e00_v02'): each is read as "
     "one person of zeros"),
    (lambda samples, split: split['val'].append(split['train'][0]),
     "coco.pkl: 1 of the 11 test samples are in the training split too (e.g. 'a01_s01_e00_v01'): their accuracy "
     "measures no new data"),
])
def test_a_legal_but_surprising_file_trains_with_one_warning(ws, tmp_path, capsys, change, expected):
    path = changed(ws, tmp_path, change)
    train(None, *custom_argv(ws, tmp_path / 'run', path))
    found = warnings_of(capsys.readouterr().err)
    assert len(found) == 1 and found[0].endswith(expected) and str(path) in found[0], found
    assert found[0] in (tmp_path / 'run' / 'log.txt').read_text()


def test_batchnorm_statistics_out_of_float32_stop_the_run(ws, tmp_path, capsys):
    with np.load(ws / 'data' / 'NTU60_CS.npz') as data:
        arrays = {key: data[key] for key in data.files}
    np.savez(tmp_path / 'huge.npz', **dict(arrays, x_train=arrays['x_train'] * np.float32(1e30)))   # finite
    fails(capsys, train, 'ntu', '--config', config(ws, tmp_path, data=tmp_path / 'huge.npz'), '--work-dir',
          tmp_path / 'run', match=['the BatchNorm statistics of data_bn are not finite', 'epoch 1, batch 1',
                                   'values too large'])
    assert not list((tmp_path / 'run').glob('*.pt'))


STICK = dict(edges=[[1, 0], [2, 1], [3, 2]], center=0, groups=dict(head=[0], hand=[1], hip=[2], foot=[3]))


@pytest.mark.parametrize('edge', [[1.5, 0], [True, 0], ['1', 0]])
def test_declared_edges_are_whole_joint_indexes(ws, tmp_path, capsys, edge):
    layout = dict(STICK, edges=[edge] + STICK['edges'][1:])
    fails(capsys, train, None, *custom_argv(ws, tmp_path / 'run', ws / 'coco.pkl', layout=layout),
          match=[f'feeder argument layout.edges: {edge!r} is not a pair of joint indexes (whole numbers)'])


@pytest.mark.parametrize('stream', ['joint', 'bone'])
def test_the_graph_and_the_feeder_read_one_layout(ws, tmp_path, capsys, stream):
    chain = dict(edges=[[joint, joint - 1] for joint in range(1, 17)], center=0,
                 groups=dict(head=[0, 1], hand=[2, 3], hip=[4, 5], foot=[6, 7]))
    argv = custom_argv(ws, tmp_path / 'run', ws / 'coco.pkl', config_name=f'lst_{stream}')
    fails(capsys, train, None, *argv, '--model-args', repr(dict(graph_args=dict(layout=chain))),
          match=["train_feeder_args layout 'coco' (17 joints) and model_args graph graph.skeleton.Graph layout "
                 "'declared' (17 joints) differ in their edges"])
    assert not (tmp_path / 'run').exists()


def test_convert_ucla_reports_each_bad_file_and_converts_the_rest(ws, tmp_path):
    folder = tmp_path / 'all_sqe'
    shutil.copytree(ws / 'all_sqe', folder)
    files = sorted(folder.iterdir())
    files[3].write_text('{"skeletons": [[1, 2')
    files[17].write_text('{"skeletons": []}')
    result = command(['-m', 'preprocess.convert', 'ucla', '--input', folder, '--out', tmp_path / 'ucla.pkl'])
    errors = [line for line in result.stderr.splitlines() if line.startswith('error: ')]
    assert result.returncode == 1 and len(errors) == 2, result.stderr
    assert errors[0].startswith(f'error: {files[3]}: cannot read NW-UCLA skeletons')
    assert errors[1].startswith(f'error: {files[17]}: "skeletons" has shape (0,)')
    samples, split = annotations.load(tmp_path / 'ucla.pkl')
    assert len(samples) == len(files) - 2 == len(split['train']) + len(split['val'])
    assert files[3].stem not in split['train'] + split['val']


# ------------------------------------------------------------------------------------------------ promises bent
def crafted(ws, tmp_path):
    with open(tmp_path / 'evil.pkl', 'wb') as f:
        pickle.dump(dict(split=dict(train=['a'], val=['a']), annotations=[Evil(tmp_path / 'ran')]), f)
    return tmp_path / 'evil.pkl', ws / 'custom_text', 10


def four_classes(ws, tmp_path):
    text = tmp_path / 'text'
    pose_data.write_descriptions(str(text))
    for path in text.iterdir():
        path.write_text(''.join(path.read_text().splitlines(keepends=True)[:4]))
    return ws / 'coco.pkl', text, 10


@pytest.mark.parametrize('make, match', [
    (lambda ws, tmp: (changed(ws, tmp, set_keypoint(2, np.nan)), ws / 'custom_text', 10),
     ["coco.pkl, frame_dir 'a02_s01_e00_v01': keypoint holds NaN or Inf"]),
    (crafted, ['evil.pkl: refused to read it: it asks for posix.system']),
    (lambda ws, tmp: (ws / 'ucla_3d.pkl', ws / 'custom_text', 10),
     ["ucla_3d.pkl, frame_dir 'a01_s01_e00_v01': 20 keypoints per person, but the layout has 17"]),
    (lambda ws, tmp: (ws / 'coco.pkl', ws / 'custom_text', 2), ['split has label', 'outside 0..1']),
    (four_classes, ['custom_label_map.txt: 4 classes, expected 10']),
], ids=['nan', 'crafted', '3d', 'num_class', 'text'])
def test_reproduce_checks_its_runs_up_front(ws, tmp_path, capsys, make, match):
    ann_file, text, num_class = make(ws, tmp_path)
    fails(capsys, reproduce.main, ['--benchmark', 'custom-2d', '--schedule', 'quick', '--seeds', '1', '--out',
                                   str(tmp_path / 'out'), '--ann-file', str(ann_file), '--num-class', str(num_class),
                                   '--text-dir', str(text), '--text-cache-dir', str(ws / 'bank')], match=match)
    assert not (tmp_path / 'out').exists() and not (tmp_path / 'ran').exists()


# ------------------------------------------------------------------------------------------------ trips
@pytest.mark.parametrize('make, match', [(os.mkdir, 'is a folder; expected annotation file'),
                                         (os.mkfifo, 'not a regular file (a pipe, a socket or a device); expected '
                                                     'annotation file')])
def test_an_annotation_file_that_is_no_file_says_what_it_is(ws, tmp_path, capsys, make, match):
    make(tmp_path / 'ann.pkl')
    fails(capsys, train, None, *custom_argv(ws, tmp_path / 'run', tmp_path / 'ann.pkl'),
          match=[f'{tmp_path / "ann.pkl"}: {match}'])
    if make is os.mkfifo:                                           # predict's inputs likewise (a folder is walked)
        fails(capsys, visualize.main, ['--input', str(tmp_path / 'ann.pkl'), '--out', str(tmp_path / 'x.png')],
              match=[f'{tmp_path / "ann.pkl"}: not a regular file'])


def test_a_negative_label_names_no_missing_class_count(ws, tmp_path, capsys):
    path = changed(ws, tmp_path, lambda samples, split: samples[0].update(label=-1))
    fails(capsys, visualize.main, ['--input', str(path), '--out', str(tmp_path / 'x.png')],
          match=[f"{path}, frame_dir 'a01_s01_e00_v01': label -1, expected a class index >= 0"])


def test_frame_dirs_are_stems_or_paths_without_extension_and_unique(tmp_path):
    paths = [touch(tmp_path / name) for name in ('run/a.mp4', 'jump/a.mp4', 'jump/b.avi', 'jump/c.mp4',
                                                 'jump/c.avi')]
    assert video.frame_dirs(paths) == ['run/a', 'jump/a', 'b', 'jump/c.mp4', 'jump/c.avi']


@pytest.mark.parametrize('fraction, per_class, in_val', [(0.5, 3, 1), (0.5, 4, 2), (0.5, 5, 2), (0.2, 10, 2),
                                                         (0.3, 5, 1), (0.7, 5, 3), (0.6, 3, 2)])
def test_val_fraction_rounds_ties_to_train(tmp_path, fraction, per_class, in_val):
    paths = [touch(tmp_path / name / f'{name}{i}.mp4') for name in ('jump', 'run') for i in range(per_class)]
    videos, _ = video.plan(paths, labels_from_folders=True, val_fraction=fraction)
    assert [sum(v.split == 'val' and v.label == label for v in videos) for label in (0, 1)] == [in_val, in_val]
