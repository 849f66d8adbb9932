"""Statistics of paired runs (tools/reproduce.py): two arms trained on the same seed differ in one setting, so each
seed gives one paired difference, and each test sample one pair of verdicts (right or wrong in each arm).

  mean_std, paired_stat   mean +- sample std over seeds; for a difference also its 95% t-interval, the one-sample
                          t-test against 0 and the seeds that 80% power would need at the observed spread
  mcnemar                 McNemar's exact test on the samples right in one arm only
  welch                   two arms not trained in pairs (CTR-GCN has its own weights and recipe): the difference of
                          their means with Welch's t-interval and t-test
  top_confusion           the wrong class an arm predicts most often for the samples of one class
"""
import math

import numpy as np

LEVEL = 0.95                  # of the t-interval
ALPHA = 0.05                  # two-sided, of the t-test and of the power calculation
POWER = 0.8
MOST_SEEDS = 10 ** 6          # past this, the seeds needed are reported as None (no useful answer)


def mean_std(values):
    """mean, sample std, n and the values themselves (None values left out); None without any value."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    return dict(mean=float(np.mean(values)), std=float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                n=len(values), values=values)


def with_ci(stat, level=LEVEL):
    """`stat` plus the t-interval of its mean (n >= 2): for a paired difference, 0 outside it means the seeds agree
    on the sign at that level."""
    if stat is not None and stat['n'] > 1:
        from scipy.stats import t                 # scipy comes with scikit-learn
        half = t.ppf(0.5 + level / 2, stat['n'] - 1) * stat['std'] / math.sqrt(stat['n'])
        stat['ci95'] = [float(stat['mean'] - half), float(stat['mean'] + half)]
    return stat


def paired_stat(differences):
    """The per-seed differences summarised: mean_std, the t-interval (ci95), the t-test against 0 (t, p; None when
    the differences do not vary) and `seeds_for_80_power`."""
    stat = with_ci(mean_std(differences))
    if stat is None:
        return None
    stat.update(t_test(stat['values']))
    stat['seeds_for_80_power'] = seeds_for_power(stat['mean'], stat['std']) if stat['n'] > 1 else None
    return stat


def t_test(differences):
    """The paired t-test, i.e. the one-sample t-test of the differences against 0: t, df, two-sided p. With fewer
    than two differences, or differences that are all equal, t is undefined: None for t and p."""
    n = len(differences)
    if n < 2 or np.std(differences) == 0:
        return dict(t=None, df=max(n - 1, 0), p=None)
    from scipy.stats import ttest_1samp
    result = ttest_1samp(differences, 0.0)
    return dict(t=float(result.statistic), df=n - 1, p=float(result.pvalue))


def power(n, effect):
    """The power of the two-sided one-sample t-test at ALPHA with n samples when the true mean is `effect` standard
    deviations from 0 (the noncentral t distribution)."""
    from scipy.stats import nct, t
    df, shift = n - 1, effect * math.sqrt(n)
    critical = t.ppf(1 - ALPHA / 2, df)
    return float(nct.sf(critical, df, shift) + nct.cdf(-critical, df, shift))


def seeds_for_power(mean, std, target=POWER):
    """The fewest paired seeds (>= 2) at which the t-test detects a true mean difference of `mean` with spread `std`
    with probability `target`. None when the mean is 0 or the spread is 0 (no answer) or past MOST_SEEDS."""
    if mean == 0 or std == 0 or not (math.isfinite(mean) and math.isfinite(std)):
        return None
    effect = abs(mean) / std
    low, high = 1, 2                                   # power(low) < target <= power(high) once the doubling stops
    while power(high, effect) < target:
        low, high = high, high * 2
        if high > MOST_SEEDS:
            return None
    while high - low > 1:                              # power grows with n: bisect
        middle = (low + high) // 2
        low, high = (low, middle) if power(middle, effect) >= target else (middle, high)
    return high


def welch(a, b, level=LEVEL):
    """Unpaired runs of two arms (lists of top-1, one per run): mean(a) - mean(b), Welch's t-interval of it (unequal
    variances, Welch-Satterthwaite degrees of freedom), the two-sided p of Welch's t-test, and each arm's n. The
    interval and p are None with fewer than two runs in an arm or no spread in either."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    result = dict(mean=float(a.mean() - b.mean()), n=[len(a), len(b)], ci95=None, df=None, p=None)
    if len(a) < 2 or len(b) < 2:
        return result
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    if va + vb == 0:
        return result
    from scipy.stats import t
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = t.ppf(0.5 + level / 2, df) * math.sqrt(va + vb)
    statistic = result['mean'] / math.sqrt(va + vb)
    result.update(ci95=[float(result['mean'] - half), float(result['mean'] + half)], df=float(df),
                  p=float(2 * t.sf(abs(statistic), df)))
    return result


def mcnemar(a_right, b_right):
    """McNemar's exact test on paired verdicts (boolean arrays, one entry per test sample): b = right in arm a only,
    c = right in arm b only, p = the two-sided binomial p of b successes in b + c trials at 1/2 (1.0 without any
    discordant sample)."""
    a_right, b_right = np.asarray(a_right, bool), np.asarray(b_right, bool)
    b, c = int((a_right & ~b_right).sum()), int((~a_right & b_right).sum())
    if b + c == 0:
        return dict(b=0, c=0, p=1.0)
    from scipy.stats import binomtest
    return dict(b=b, c=c, p=float(binomtest(b, b + c, 0.5).pvalue))


def top_confusion(predicted, label, other_predicted):
    """For samples of class `label`: the wrong class `predicted` holds most often (the lowest label on a tie), how
    often, and how often `other_predicted` (the other arm's, the same samples) holds that class. None without any
    wrong prediction."""
    predicted, other_predicted = np.ravel(predicted), np.ravel(other_predicted)
    wrong = predicted[predicted != label]
    if wrong.size == 0:
        return None
    counts = np.bincount(wrong)
    instead = int(counts.argmax())
    return dict(label=instead, count=int(counts[instead]), other_count=int((other_predicted == instead).sum()))
