"""Caption metrics: BLEU-1..4, ROUGE-L and CIDEr-D as pycocoevalcap computes them, METEOR through pycocoevalcap.

Reference: salaniz/pycocoevalcap 1.2 (PyPI `pycocoevalcap==1.2`, wheel sha256 083ed7910f1aec00..., the
coco-caption code): `bleu/bleu_scorer.py`
(`BleuScorer.compute_score(option="closest")`, as `bleu/bleu.py` calls it), `rouge/rouge.py` (`Rouge`),
`cider/cider_scorer.py` (`CiderScorer`, i.e. CIDEr-D) and `meteor/meteor.py` (`Meteor`, the METEOR 1.5 jar).
BLEU, ROUGE-L and CIDEr-D are computed here in pure Python/numpy and equal pycocoevalcap's to 1e-6 on the same
tokenised inputs (tests/test_eval_caption_reference.py runs pycocoevalcap itself when installed). METEOR needs
Java, so it is computed by pycocoevalcap's own `Meteor` when the `captions` extra is installed and `java` is on
PATH; otherwise it is None and `METEOR_reason` says why.

Tokenisation happens once, before every metric (each metric then splits the tokens on spaces, as pycocoevalcap
does on its tokenised captions):

- `simple` (default, no Java): lower case, then the runs of letters and digits (`[^\\W_]+`, Unicode-aware);
  punctuation, underscores and other symbols separate tokens and are dropped ("A man's guitar-solo!" ->
  `a man s guitar solo`).
- `ptb`: coco-caption's own step, pycocoevalcap's `PTBTokenizer` (Stanford PTBTokenizer 3.4.1, `-lowerCase`,
  then the punctuation tokens of its list removed: "A man's guitar-solo!" -> `a man 's guitar-solo`). Needs
  the `captions` extra and Java.

For plain English captions the two agree; they differ on clitics ('s, n't), hyphenated words and brackets.

Every function takes hypotheses (str, or None for an unparseable response, scored as an empty caption) and
references (a list of strings per sample).
"""

from __future__ import annotations

import importlib.util
import math
import re
import shutil
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

TINY, SMALL = 1e-15, 1e-9
TOKENIZERS = ("simple", "ptb")
Tokens = list[str]


def tokenize(text: str | None) -> Tokens:
    """The `simple` tokenisation: lower-cased letter/digit runs ('A man, singing!' -> ['a', 'man', 'singing'])."""
    if not text:
        return []
    return re.findall(r"[^\W_]+", text.lower())


def java_reason() -> str | None:
    """Why pycocoevalcap's Java tools cannot run here (None when they can)."""
    if importlib.util.find_spec("pycocoevalcap") is None:
        return "pycocoevalcap is not installed (pip install 'avuie[captions]')"
    if shutil.which("java") is None:
        return "no java on PATH (METEOR and the PTB tokeniser run on Java)"
    return None


def ptb_tokenize(texts: Sequence[str | None]) -> list[Tokens]:
    """coco-caption's PTB tokenisation of each text (pycocoevalcap `PTBTokenizer`); RuntimeError without Java."""
    reason = java_reason()
    if reason:
        raise RuntimeError(f"the ptb tokeniser cannot run: {reason}")
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    out = PTBTokenizer().tokenize({i: [{"caption": t or ""}] for i, t in enumerate(texts)})
    return [out[i][0].split() for i in range(len(texts))]


def tokenized(
    hyps: Sequence[str | None], refs: Sequence[Sequence[str]], tokenizer: str = "simple"
) -> tuple[list[Tokens], list[list[Tokens]]]:
    """Hypotheses and references as token lists, by the `simple` or the `ptb` tokenisation."""
    _check(hyps, refs)
    if tokenizer == "simple":
        return [tokenize(h) for h in hyps], [[tokenize(r) for r in rs] for rs in refs]
    if tokenizer != "ptb":
        raise ValueError(f"unknown caption tokenizer {tokenizer!r}: use one of {', '.join(TOKENIZERS)}")
    flat = ptb_tokenize([*hyps, *(r for rs in refs for r in rs)])
    h_tok, rest = flat[: len(hyps)], iter(flat[len(hyps) :])
    return h_tok, [[next(rest) for _ in rs] for rs in refs]


def ngrams(tokens: Sequence[str], n: int) -> Counter:
    """Counts of the n-grams (tuples) of a token list."""
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _check(hyps: Sequence, refs: Sequence[Sequence]) -> None:
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses for {len(refs)} reference sets")
    if any(not r for r in refs):
        raise ValueError("every sample needs at least one reference caption")


def _tokens(hyps: Sequence, refs: Sequence[Sequence]) -> tuple[list[Tokens], list[list[Tokens]]]:
    """Texts tokenised by `simple`; token lists (already tokenised) pass through."""
    _check(hyps, refs)
    h = [x if isinstance(x, list) else tokenize(x) for x in hyps]
    return h, [[x if isinstance(x, list) else tokenize(x) for x in rs] for rs in refs]


def bleu(hyps: Sequence, refs: Sequence[Sequence], max_n: int = 4) -> list[float]:
    """Corpus BLEU-1..BLEU-max_n (BleuScorer, option "closest"); returns a list, BLEU-4 last."""
    h_tok, r_tok = _tokens(hyps, refs)
    correct, guess = [0] * max_n, [0] * max_n
    test_len = ref_len = 0
    for h, rs in zip(h_tok, r_tok, strict=True):
        test_len += len(h)
        ref_len += min((abs(len(r) - len(h)), len(r)) for r in rs)[1]
        for n in range(1, max_n + 1):
            max_ref: Counter = Counter()
            for r in rs:
                max_ref |= ngrams(r, n)
            correct[n - 1] += sum(min(c, max_ref[g]) for g, c in ngrams(h, n).items())
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


def rouge_l(hyps: Sequence, refs: Sequence[Sequence], beta: float = 1.2) -> float:
    """Mean ROUGE-L F (`Rouge`: beta = 1.2, best precision and best recall over the references)."""
    h_tok, r_tok = _tokens(hyps, refs)
    scores = []
    for h, rs in zip(h_tok, r_tok, strict=True):
        # the reference splits its captions on " ": an empty caption is one empty token
        h, rs = h or [""], [r or [""] for r in rs]
        lcs = [lcs_length(h, r) for r in rs]
        p = max(n / len(h) for n in lcs)
        r = max(n / len(ref) for n, ref in zip(lcs, rs, strict=True))
        scores.append((1 + beta**2) * p * r / (r + beta**2 * p) if p and r else 0.0)
    return float(np.mean(scores)) if scores else 0.0


def _cider_counts(tokens: Sequence[str], n: int = 4) -> Counter:
    out: Counter = Counter()
    for k in range(1, n + 1):
        out.update(ngrams(tokens, k))
    return out


def cider(hyps: Sequence, refs: Sequence[Sequence], n: int = 4, sigma: float = 6.0) -> float:
    """Mean CIDEr-D over samples (`CiderScorer`), document frequencies from these references."""
    h_tok, r_tok = _tokens(hyps, refs)
    crefs = [[_cider_counts(r, n) for r in rs] for rs in r_tok]
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
            if k == 1:  # the reference measures length in bigrams
                length += tf
        return v, [math.sqrt(x) for x in norm], length

    scores = []
    for h, rs in zip(h_tok, crefs, strict=True):
        v_h, n_h, l_h = vec(_cider_counts(h, n))
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


def meteor(hyps: Sequence[Tokens], refs: Sequence[Sequence[Tokens]], scorer=None) -> float:
    """Mean METEOR 1.5 from pycocoevalcap's `Meteor` (Java) on tokenised captions; RuntimeError without it.

    `scorer`: a running `pycocoevalcap.meteor.meteor.Meteor` to reuse (its JVM takes seconds to start).
    """
    reason = java_reason()
    if reason:
        raise RuntimeError(f"METEOR cannot run: {reason}")
    if scorer is None:
        from pycocoevalcap.meteor.meteor import Meteor

        scorer = Meteor()
    gts = {i: [" ".join(r) for r in rs] for i, rs in enumerate(refs)}
    score, _ = scorer.compute_score(gts, {i: [" ".join(h)] for i, h in enumerate(hyps)})
    return float(score)


def caption_scores(
    hyps: Sequence[str | None],
    refs: Sequence[Sequence[str]],
    tokenizer: str = "simple",
    meteor_mode: str = "auto",
) -> dict:
    """BLEU-1..4, ROUGE-L, CIDEr (CIDEr-D) and METEOR of a caption set, tokenised once by `tokenizer`.

    `meteor_mode`: "auto" (when pycocoevalcap and Java are there), "on" (required: RuntimeError otherwise) or
    "off". Returns {"BLEU-1".."BLEU-4", "ROUGE-L", "CIDEr", "METEOR" (None when not computed), "METEOR_reason",
    "tokenizer", "n"}.
    """
    if meteor_mode not in ("auto", "on", "off"):
        raise ValueError(f"meteor must be auto, on or off, not {meteor_mode!r}")
    h_tok, r_tok = tokenized(hyps, refs, tokenizer)
    out: dict = {f"BLEU-{k}": v for k, v in enumerate(bleu(h_tok, r_tok), 1)}
    out.update({"ROUGE-L": rouge_l(h_tok, r_tok), "CIDEr": cider(h_tok, r_tok)})
    reason = "not requested (meteor off)" if meteor_mode == "off" else java_reason()
    if reason and meteor_mode == "on":
        raise RuntimeError(f"METEOR was required but cannot run: {reason}")
    out["METEOR"] = None if reason else meteor(h_tok, r_tok)
    out.update({"METEOR_reason": reason, "tokenizer": tokenizer, "n": len(hyps)})
    return out
