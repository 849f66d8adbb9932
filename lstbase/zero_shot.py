"""Zero-shot class scores and their measures, from the cosine similarities of a model's five projected skeleton
features with the text features of any classes (model/zero_shot.py computes them).

LST trains five pairs (model/objective.py): the global feature against the class name or one of its synonyms
(prompt group 0), the head, hand, hip and foot features against the name and that part's description (groups 1-4).
Each group's logits are its learnt scale (the model's logit_scale, used as training uses it) times the cosines, and
the loss is the mean of the five groups' terms. RULE, the rule this project scores classes by, is the mean of the
five groups' logits: the log of the product of the five groups' class distributions, up to a constant per sample,
so every pair training fitted has its say, each with the sharpness training gave it. The other RULES are reported
beside it (`alternatives`), to see what each part of the text adds.

The seen/unseen protocol's measures: zero-shot top-1 (the unseen classes' test samples, scored against the unseen
classes alone) and generalised zero-shot (every test sample against every class: the top-1 of the seen classes'
samples, of the unseen classes' samples, and their harmonic mean). A model scores the classes it was trained on
higher than new ones, so generalised zero-shot subtracts a bias from the seen classes' scores (calibrated stacking,
Chao et al. 2016), chosen on held-out samples of the seen classes alone, which training never saw: the bias at which
a share of them equal to the unseen classes' share of all classes goes to an unseen class. No unseen sample or
label chooses anything.
"""
import numpy as np

RULES = {
    'all groups': lambda cosines, scales: (cosines * scales[:, None]).mean(1),
    'all groups, unscaled': lambda cosines, scales: cosines.mean(1),
    'name only (global feature)': lambda cosines, scales: cosines[:, 0] * scales[0],
    'parts only': lambda cosines, scales: (cosines[:, 1:] * scales[1:, None]).mean(1),
}
RULE = 'all groups'


def combine(cosines, scales, rule=RULE):
    """samples x classes scores from samples x 5 groups x classes cosines and the 5 groups' scales."""
    return RULES[rule](np.asarray(cosines, np.float64), np.asarray(scales, np.float64))


def zero_shot_top1(scores, labels, unseen):
    """Top-1 of the samples of `unseen` classes, scored against those classes alone; None without such samples."""
    labels, unseen = np.asarray(labels), np.asarray(unseen)
    mine = np.isin(labels, unseen)
    if not mine.any():
        return None
    predicted = unseen[np.asarray(scores)[mine][:, unseen].argmax(1)]
    return float((predicted == labels[mine]).mean())


def stacking_bias(held_out_scores, seen, unseen):
    """The bias subtracted from the seen classes' scores at which the unseen classes' share of all classes of the
    held-out seen samples is predicted as an unseen class."""
    scores = np.asarray(held_out_scores)
    margins = scores[:, seen].max(1) - scores[:, unseen].max(1)
    return float(np.quantile(margins, len(unseen) / (len(seen) + len(unseen))))


def generalised(scores, labels, seen, unseen, bias):
    """Top-1 of the seen classes' and the unseen classes' samples against every class, the seen classes' scores
    lowered by `bias`, and their harmonic mean."""
    scores, labels = np.array(scores, np.float64), np.asarray(labels)
    scores[:, seen] -= bias
    right = scores.argmax(1) == labels
    seen_top1, unseen_top1 = (float(right[np.isin(labels, group)].mean()) for group in (seen, unseen))
    total = seen_top1 + unseen_top1
    return dict(bias=bias, seen=seen_top1, unseen=unseen_top1,
                harmonic=2 * seen_top1 * unseen_top1 / total if total else 0.0)


def measures(test_scores, test_labels, held_out_scores, seen, unseen):
    """Zero-shot top-1, generalised zero-shot with the calibrated bias, and without any bias."""
    return dict(zero_shot=zero_shot_top1(test_scores, test_labels, unseen),
                generalised=generalised(test_scores, test_labels, seen, unseen,
                                        stacking_bias(held_out_scores, seen, unseen)),
                uncalibrated=generalised(test_scores, test_labels, seen, unseen, 0.0))


def fused(streams, weights, rule=RULE):
    """samples x classes: the weighted sum of the streams' scores by `rule`; `streams`: each one's (cosines,
    scales)."""
    return sum(w * combine(cosines, scales, rule) for w, (cosines, scales) in zip(weights, streams))


def report(test, test_labels, held_out, seen, unseen, weights=(1.0,)):
    """measures() by RULE, the chance levels, and each rule's zero-shot top-1 and harmonic mean (`alternatives`);
    `test` and `held_out` hold each stream's (cosines, scales) of the test and the held-out samples, the streams
    fused with `weights` (ensemble.py's)."""
    found = {rule: measures(fused(test, weights, rule), test_labels, fused(held_out, weights, rule), seen, unseen)
             for rule in RULES}
    return dict(found[RULE], rule=RULE, chance=chance(seen, unseen),
                alternatives={rule: dict(zero_shot=m['zero_shot'], harmonic=m['generalised']['harmonic'])
                              for rule, m in found.items()})


def chance(seen, unseen):
    """What guessing gives: zero-shot top-1 1/|unseen|; generalised top-1 and harmonic mean 1/|classes|."""
    return dict(zero_shot=1 / len(unseen), generalised=1 / (len(seen) + len(unseen)))
