"""Caption metrics, offline and pure Python/numpy: BLEU-4, ROUGE-L and CIDEr(-D) as coco-caption computes them.

- Tokens: lower case, punctuation dropped, split on spaces (coco-caption runs the Stanford PTB tokenizer, which
  needs Java; for plain English captions the two agree except on rare contractions and hyphens).
- BLEU-4: corpus-level, clipped n-gram precision for n = 1..4 with coco-caption's smoothing (1e-15 / 1e-9),
  geometric mean, brevity penalty from the reference length closest to each hypothesis (ties: the shorter).
- ROUGE-L: per caption, the longest common subsequence against each reference; the best precision and best recall
  over the references combine into F with beta = 1.2; averaged over captions.
- CIDEr: coco-caption's CIDEr-D: TF-IDF vectors of 1..4-grams with document frequencies over the references of
  the evaluated set, cosine similarity clipped to the reference counts, a Gaussian length penalty (sigma = 6),
  averaged over n and over references, times 10. With one evaluated sample the IDF is 0 and so is CIDEr.

Every function takes hypotheses (str, or None for an unparseable response, scored as an empty caption) and
references (a list of strings per sample).
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

TINY, SMALL = 1e-15, 1e-9


def tokenize(text: str | None) -> list[str]:
    """Lower-cased word tokens, punctuation dropped ('A man, singing!' -> ['a', 'man', 'singing'])."""
    if not text:
        return []
    return re.findall(r"[^\W_]+", text.lower())


def ngrams(tokens: Sequence[str], n: int) -> Counter:
    """Counts of the n-grams (tuples) of a token list."""
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _check(hyps: Sequence, refs: Sequence[Sequence[str]]) -> None:
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses for {len(refs)} reference sets")
    if any(not r for r in refs):
        raise ValueError("every sample needs at least one reference caption")


def bleu(hyps: Sequence[str | None], refs: Sequence[Sequence[str]], max_n: int = 4) -> list[float]:
    """Corpus BLEU-1..BLEU-max_n (coco-caption's definition); returns a list, BLEU-4 last."""
    _check(hyps, refs)
    correct, guess = [0] * max_n, [0] * max_n
    test_len = ref_len = 0
    for hyp, rs in zip(hyps, refs, strict=True):
        h = tokenize(hyp)
        r_tokens = [tokenize(r) for r in rs]
        test_len += len(h)
        ref_len += min((abs(len(r) - len(h)), len(r)) for r in r_tokens)[1]
        for n in range(1, max_n + 1):
            max_ref: Counter = Counter()
            for r in r_tokens:
                max_ref |= ngrams(r, n)
            hyp_counts = ngrams(h, n)
            correct[n - 1] += sum(min(c, max_ref[g]) for g, c in hyp_counts.items())
            guess[n - 1] += max(len(h) - n + 1, 0)
    scores, product = [], 1.0
    for k in range(max_n):
        product *= (correct[k] + TINY) / (guess[k] + SMALL)
        scores.append(product ** (1.0 / (k + 1)))
    ratio = (test_len + TINY) / (ref_len + SMALL)
    if ratio < 1:
        scores = [s * math.exp(1 - 1 / ratio) for s in scores]
    return scores


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists."""
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(hyps: Sequence[str | None], refs: Sequence[Sequence[str]], beta: float = 1.2) -> float:
    """Mean ROUGE-L F (beta = 1.2, best precision and recall over references), coco-caption's definition."""
    _check(hyps, refs)
    scores = []
    for hyp, rs in zip(hyps, refs, strict=True):
        h = tokenize(hyp)
        precs, recs = [], []
        for r in rs:
            r_tok = tokenize(r)
            lcs = lcs_length(h, r_tok)
            precs.append(lcs / len(h) if h else 0.0)
            recs.append(lcs / len(r_tok) if r_tok else 0.0)
        p, r = max(precs), max(recs)
        scores.append((1 + beta**2) * p * r / (r + beta**2 * p) if p and r else 0.0)
    return float(np.mean(scores)) if scores else 0.0


def _cider_counts(tokens: Sequence[str], n: int = 4) -> Counter:
    out: Counter = Counter()
    for k in range(1, n + 1):
        out.update(ngrams(tokens, k))
    return out


def cider(hyps: Sequence[str | None], refs: Sequence[Sequence[str]], n: int = 4, sigma: float = 6.0) -> float:
    """Mean CIDEr-D over samples (coco-caption's `Cider`), document frequencies from these references."""
    _check(hyps, refs)
    crefs = [[_cider_counts(tokenize(r), n) for r in rs] for rs in refs]
    ctest = [_cider_counts(tokenize(h), n) for h in hyps]
    df: Counter = Counter()
    for rs in crefs:
        df.update({g for r in rs for g in r})
    log_docs = np.log(float(len(crefs)))

    def vec(counts: Counter) -> tuple[list[dict], list[float], int]:
        v: list[dict] = [defaultdict(float) for _ in range(n)]
        norm = [0.0] * n
        length = 0
        for g, tf in counts.items():
            k = len(g) - 1
            v[k][g] = tf * (log_docs - np.log(max(1.0, df[g])))
            norm[k] += v[k][g] ** 2
            if k == 1:  # coco-caption measures length in bigrams
                length += tf
        return v, [math.sqrt(x) for x in norm], length

    scores = []
    for test, rs in zip(ctest, crefs, strict=True):
        v_h, n_h, l_h = vec(test)
        total = np.zeros(n)
        for r in rs:
            v_r, n_r, l_r = vec(r)
            penalty = math.exp(-((l_h - l_r) ** 2) / (2 * sigma**2))
            for k in range(n):
                val = sum(min(x, v_r[k].get(g, 0.0)) * v_r[k].get(g, 0.0) for g, x in v_h[k].items())
                if n_h[k] and n_r[k]:
                    val /= n_h[k] * n_r[k]
                total[k] += val * penalty
        scores.append(float(np.mean(total)) / len(rs) * 10.0)
    return float(np.mean(scores)) if scores else 0.0


def caption_scores(hyps: Sequence[str | None], refs: Sequence[Sequence[str]]) -> dict:
    """BLEU-4, ROUGE-L and CIDEr of a caption set. Returns {"BLEU-4", "ROUGE-L", "CIDEr", "n"}."""
    return {
        "BLEU-4": bleu(hyps, refs)[-1],
        "ROUGE-L": rouge_l(hyps, refs),
        "CIDEr": cider(hyps, refs),
        "n": len(hyps),
    }
