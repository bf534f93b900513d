"""Corpus analysis on top of matching statistics.

* :func:`coverage`, :func:`creativity_index`, :func:`membership_scores`,
  :func:`longest_common_substring`, :func:`longest_common_subsequence`,
  :func:`aggregate`, :func:`auroc`, :func:`tpr_at_fpr` — n-gram coverage
  membership inference (Hallinan et al. 2025, arXiv 2508.09603);
* :func:`contamination_scores`, :func:`contamination_report` — benchmark
  contamination against a corpus index;
* :func:`perplexity` — ∞-gram perplexity, alone and interpolated with a neural LM.

Heavy or optional dependencies (nltk, unidecode, matplotlib, torch,
transformers) are imported only when a function needs them.
"""

from .matches import LongestMatches, MaximalMatch
from .reference import TinyIndex, tokenize_units
from .mia import (
    FPR_THRESHOLDS,
    Coverage,
    aggregate,
    auroc,
    coverage,
    creativity_index,
    longest_common_subsequence,
    longest_common_substring,
    membership_scores,
    roc_points,
    tpr_at_fpr,
)
from .contamination import ContaminationResult, EntryScore, contamination_scores, write_report

__all__ = [
    "LongestMatches", "MaximalMatch", "TinyIndex", "tokenize_units",
    "Coverage", "coverage", "creativity_index", "membership_scores", "longest_common_substring",
    "longest_common_subsequence", "aggregate", "auroc", "tpr_at_fpr", "roc_points", "FPR_THRESHOLDS",
    "contamination_scores", "ContaminationResult", "EntryScore", "write_report",
    "perplexity",
]

# Imported after the other names: importing the submodule binds the package
# attribute `perplexity` to it, and this rebinds it to the function.
from .perplexity import perplexity  # noqa: E402
