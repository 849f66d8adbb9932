"""Video: pose extraction with 1, 2 and 4 people in view, and the delay of a live stream behind real time.

    python bench/video.py --clip ../shared/datasets/video/ntu_sample.avi [--stream-seconds 600]
    python bench/run.py --only video                        # the same, as a suite (the clip from ../shared)

Clips made from the NTU clip (two men, 1920 x 1080, 72 frames): the man on the right alone (its first 30 frames,
before the hug, cropped to 640 x 1080, played forward and back to 120 frames), the clip itself, and the clip beside
its mirror image (3840 x 1080, four men). Each is extracted as tools/extract_pose.py does it (decoding included) by
the tracker of several people (`--max-persons 4`) and, for one and two people, by MediaPipe's own single-person
tracker (`--max-persons 1`, the earlier figure); medians of 3 runs, frames per second.

The stream: the one-person clip played in a loop for --stream-seconds, read at 30 frames/s by tools/timeline.py's
live mode with a COCO-17 CTR-GCN (seeded weights, 64-frame windows every 16 frames): the delay of each decided window
behind the stream (median and largest, over each quarter of the stream), the frames skipped, and the memory
(resident set) at each quarter.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, 'torchlight'), os.path.join(ROOT, 'tools')]
DEFAULT_CLIP = os.path.join(os.path.dirname(ROOT), 'shared', 'datasets', 'video', 'ntu_sample.avi')


def write_clips(clip, folder):
    """{name: (path, people)} of the three clips (see the module's docstring)."""
    import cv2
    from preprocess import video
    frames = list(video.read_frames(clip))
    one = [f[:, 900:1540] for f in frames[:30]]
    clips = {'1 person': ((one + one[::-1]) * 2, 1), '2 people': (frames, 2),
             '4 people': ([np.concatenate([f, f[:, ::-1]], axis=1) for f in frames], 4)}
    written = {}
    for name, (images, people) in clips.items():
        path = os.path.join(folder, name.replace(' ', '_') + '.avi')
        height, width = images[0].shape[:2]
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), 30, (width, height))
        for image in images:
            writer.write(np.ascontiguousarray(image))
        writer.release()
        written[name] = (path, people, len(images))
    return written


def extraction_rows(clips, repeats=3):
    from preprocess import video
    rows = []
    for name, (path, people, frames) in clips.items():
        trackers = [('several people (--max-persons 4)', 4)] + ([('MediaPipe\'s own (--max-persons 1)', 1)]
                                                                if people <= 2 else [])
        for tracker, max_persons in trackers:
            times, found = [], None
            for _ in range(repeats):
                start = time.perf_counter()
                skeleton = video.extract(path, 'coco', max_persons=max_persons)
                times.append(time.perf_counter() - start)
                found = skeleton.keypoint.shape[0]
            seconds = statistics.median(times)
            rows.append({'clip': f'{name} ({frames} frames)', 'tracker': tracker, 'people tracked': found,
                         'frames/s': round(frames / seconds, 1), 'ms/frame': round(1000 * seconds / frames, 1),
                         'spread (s)': f'{min(times):.2f}..{max(times):.2f}'})
    return rows


def resident_mib():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    return float('nan')


def stream_notes(path, seconds, folder):
    """The one-person clip looped for `seconds` as a 30 frames/s stream through the live timeline."""
    import cv2
    import yaml
    import torch
    import live
    import predict
    import timeline
    import trained_model
    from preprocess import video
    frames = list(video.read_frames(path))
    looped = os.path.join(folder, 'stream.avi')
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(looped, cv2.VideoWriter_fourcc(*'MJPG'), 30, (width, height))
    for k in range(int(seconds * 30)):
        writer.write(frames[k % len(frames)])
    writer.release()
    config = yaml.safe_load(open(os.path.join(ROOT, 'config', 'custom', 'ctrgcn_joint_2d.yaml')))
    config_path = os.path.join(folder, 'c.yaml')
    with open(config_path, 'w') as f:
        yaml.safe_dump(config, f)
    weights = os.path.join(folder, 'w.pt')
    torch.manual_seed(0)
    torch.save(trained_model.build_model(config, config_path).state_dict(), weights)
    scorer = timeline.Scorer(predict.load_streams([config_path], [weights]), 'stream')
    live.warm_up(scorer, 17, 64)
    memory, marks = [], []

    def log(line):
        marks.append(time.monotonic())
        memory.append(resident_mib())

    with video.people_finder(2) as finder:
        _, stats = live.run_stream(live.PacedFile(looped), finder, scorer, 64, 16, [str(k) for k in range(10)],
                                   'coco', 'stream', log=log)
    delays = np.array(stats['delays'])
    quarters = np.array_split(np.arange(len(delays)), 4)
    notes = [f'stream of {seconds:g} s at 30 frames/s, one person: {stats["read"]} frames, {stats["processed"]} '
             f'estimated, {stats["skipped"]} skipped ({100 * stats["skipped"] / max(1, stats["read"]):.0f}%), '
             f'{len(delays)} windows decided']
    notes += [f'quarter {q + 1} of the stream: delay behind it median {np.median(delays[index]):.3f} s, max '
              f'{delays[index].max():.3f} s; resident memory {memory[index[-1]]:.1f} MiB'
              for q, index in enumerate(quarters)]
    return notes


def run(clip=DEFAULT_CLIP, stream_seconds=120, quick=False, smoke=False):
    if not os.path.isfile(clip):
        return {'rows': [], 'notes': [f'{clip}: not here; the video suite needs the NTU clip']}
    with tempfile.TemporaryDirectory() as folder:
        clips = write_clips(clip, folder)
        rows = extraction_rows(clips, repeats=1 if (quick or smoke) else 3)
        notes = stream_notes(clips['1 person'][0], 10 if smoke else stream_seconds, folder)
    return {'rows': rows, 'notes': notes}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--clip', default=DEFAULT_CLIP)
    parser.add_argument('--stream-seconds', type=float, default=120)
    args = parser.parse_args(argv)
    result = run(args.clip, args.stream_seconds)
    for row in result['rows']:
        print(row)
    for note in result['notes']:
        print(note)


if __name__ == '__main__':
    main()
