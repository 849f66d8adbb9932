#!/usr/bin/env bash
# The whole LST job on built-in synthetic data, on the CPU, offline (under half an hour on 2 cores):
# raw .skeleton files -> preprocessing -> LST joint and bone streams -> test with saved scores -> ensemble.
set -euo pipefail
cd "$(dirname "$0")/../.."
DEMO=data/demo
WORK=work_dir/demo

echo "== 1/5 synthetic raw NTU-format files (10 classes)"
python -m preprocess.synthetic ntu --out $DEMO/raw --classes 10 --per-class 30 --empty-files 2
echo "== 2/5 preprocessing (the three steps of data/ntu in one command)"
python -m preprocess.ntu --dataset ntu60 --raw-dir $DEMO/raw --out-dir $DEMO/ntu
for stream in joint bone; do
  echo "== 3/5 training LST, $stream stream"
  python main_multipart_ntu.py --config config/demo/lst_$stream.yaml --work-dir $WORK/lst_$stream
  echo "== 4/5 testing the best $stream weights with saved scores"
  best=$(python -c "import torch; print(torch.load('$WORK/lst_$stream/checkpoint.pt', weights_only=False)['best_acc_epoch'])")
  weights=$(ls $WORK/lst_$stream/runs-$best-*.pt | head -1)
  python main_multipart_ntu.py --config $WORK/lst_$stream/config.yaml --work-dir $WORK/lst_$stream \
    --phase test --save-score True --weights "$weights"
done
echo "== 5/5 two-stream ensemble"
python ensemble.py --datasets ntu/xsub --joint-dir $WORK/lst_joint --bone-dir $WORK/lst_bone --data-dir $DEMO
