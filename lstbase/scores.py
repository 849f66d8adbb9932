"""Accuracy of class scores."""
import numpy as np


def top_k(scores, labels, k):
    """The share of samples whose label is among their `k` highest scores (scores: N x classes, one row a sample)."""
    rank = np.argsort(scores, axis=1)[:, -k:]
    return float(np.mean([label in row for label, row in zip(labels, rank)]))
