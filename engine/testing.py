"""The test phase: the weights given with --weights evaluated on the test split, with the files named after them."""
import os

from engine import zero_shot
from engine.args import input_files
from engine.evaluate import evaluate
from engine.report import SCORE_FILE
from lstbase.files import refuse_writing_inputs


def plan_test_outputs(arg):
    """The test phase's output files, named after the weights; none may be one of the run's inputs."""
    if not arg.weights:
        raise ValueError('--phase test needs --weights <work_dir>/runs-<epoch>-<step>.pt (or best.pt)')
    base = os.path.join(arg.work_dir, os.path.splitext(os.path.basename(arg.weights))[0])
    planned = dict(wrong=base + '_wrong.txt', right=base + '_right.txt', csv=base + '_test_each_class_acc.csv',
                   scores=os.path.join(arg.work_dir, SCORE_FILE) if arg.save_score else None,
                   config=os.path.join(arg.work_dir, 'config_test.yaml'))
    if arg.unseen_classes:
        planned.update(zero_shot=os.path.join(arg.work_dir, zero_shot.RESULTS_FILE),
                       zero_shot_scores=os.path.join(arg.work_dir, zero_shot.SCORES_FILE))
    refuse_writing_inputs([(f'the test phase\'s {kind} file', path) for kind, path in planned.items()],
                          input_files(arg), advice='rename the input or use another --work-dir')
    return planned


def test(run, outputs):
    """Evaluate the run's model (its --weights loaded) and write `outputs` (plan_test_outputs); its top-1."""
    arg, log, epoch = run.arg, run.log, run.weights_epoch
    log(f'Model:   {arg.model}.')
    log(f'Weights: {arg.weights}' + (f' (epoch {epoch}).' if epoch else '.'))
    evaluation = evaluate(run.model, run.data_loader['test'], run.device, run.use_amp, epoch or 0, arg.show_topk, log)
    confusion = run.report.evaluation(evaluation, [outputs['scores']] if outputs['scores'] else [],
                                      csv_file=outputs['csv'], wrong_file=outputs['wrong'],
                                      right_file=outputs['right'])
    run.report.confusion(confusion, f'test of {f"epoch {epoch}" if epoch else os.path.basename(arg.weights)}')
    if run.protocol:
        zero_shot.protocol_test(run, *run.protocol)
    log(f'Outputs: {", ".join(os.path.basename(p) for p in outputs.values() if p)} in {arg.work_dir}')
    log('Done.\n')
    return evaluation.accuracy
