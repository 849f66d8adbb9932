#!/usr/bin/env bash
# The framing experiment of docs/results.md: 2-D NW-UCLA at two framings, trained on `close`, tested on both.
# Usage: bash docs/runs/framing/run.sh [WORK_DIR [NW_UCLA_ALL_SQE]]  (defaults work_dir/framing, data/NW-UCLA/all_sqe;
# a second call goes on where the first stopped). The wrong-sample lists of the page's runs lie beside this script.
set -euo pipefail
cd "$(dirname "$0")/../../.."
W=${1:-work_dir/framing}
UCLA=${2:-data/NW-UCLA/all_sqe}
mkdir -p $W
[ -f $W/far.pkl ] || python -c "
import sys; sys.path.insert(0, 'tests')
import pose_data
for framing in pose_data.FRAMINGS:
    pose_data.write_coco_from_ucla('$UCLA', '$W/%s.pkl' % framing, framing=framing)
"
for seed in 1 2; do
  for norm in image person; do
    run=$W/${norm}_seed$seed
    feeder="'num_person': 1, 'window_size': 32, 'normalise': '$norm'"
    OMP_NUM_THREADS=1 python main.py --config config/custom/ctrgcn_joint_2d.yaml --work-dir $run \
      --train-feeder-args "{'ann_file': '$W/close.pkl', 'split': 'train', $feeder}" \
      --test-feeder-args "{'ann_file': '$W/close.pkl', 'split': 'val', $feeder}" \
      --model-args "{'num_class': 10, 'num_person': 1}" --seed $seed \
      --num-epoch 8 --step 6 --warm_up_epoch 1 --batch-size 16 --test-batch-size 64 --device cpu --num-worker 0
    for framing in close far; do
      [ -f $run/test_$framing/best_wrong.txt ] || OMP_NUM_THREADS=1 python main.py --config $run/config.yaml \
        --work-dir $run/test_$framing --phase test --weights $run/best.pt \
        --test-feeder-args "{'ann_file': '$W/$framing.pkl'}"
    done
  done
done
