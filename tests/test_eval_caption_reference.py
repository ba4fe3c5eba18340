"""Caption metrics against pycocoevalcap 1.2 itself (salaniz/pycocoevalcap; skipped where it is not installed).

Both sides get the same tokenised captions (our `simple` tokenisation, joined by spaces, which is what
pycocoevalcap's scorers expect after its tokeniser); BLEU-1..4, ROUGE-L and CIDEr-D must agree to 1e-6 on random
caption sets, including empty hypotheses, several references per sample and a reference with no word. METEOR
and the `ptb` tokenisation run pycocoevalcap's own Java tools, so they are checked where Java is present.
"""

from __future__ import annotations

import random

import pytest

from avuie.eval import metrics_caption as mc

coco = pytest.importorskip(
    "pycocoevalcap", reason="pycocoevalcap is not installed (the captions extra): nothing to compare against"
)
needs_java = pytest.mark.skipif(mc.java_reason() is not None, reason=f"{mc.java_reason()}")

WORDS = "a the man woman dog guitar piano plays sings barks on stage street loudly while two and is".split()


def random_set(seed: int, n: int = 40) -> tuple[list[str | None], list[list[str]]]:
    rng = random.Random(seed)
    sentence = lambda k: " ".join(rng.choice(WORDS) for _ in range(k))  # noqa: E731
    refs = [[sentence(rng.randint(3, 14)) for _ in range(rng.randint(1, 5))] for _ in range(n)]
    hyps: list[str | None] = []
    for rs in refs:
        roll = rng.random()
        if roll < 0.1:
            hyps.append(None)  # unparseable: an empty caption
        elif roll < 0.4:  # a near copy of a reference: high n-gram overlap
            words = rng.choice(rs).split()
            words[rng.randrange(len(words))] = rng.choice(WORDS)
            hyps.append(" ".join(words))
        else:
            hyps.append(sentence(rng.randint(1, 16)))
    refs[3].append("!!!")  # a reference with no word
    return hyps, refs


def pycoco(h_tok, r_tok) -> dict:
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    res = {i: [" ".join(h)] for i, h in enumerate(h_tok)}
    gts = {i: [" ".join(r) for r in rs] for i, rs in enumerate(r_tok)}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    return {
        **{f"BLEU-{k}": v for k, v in enumerate(bleu, 1)},
        "ROUGE-L": Rouge().compute_score(gts, res)[0],
        "CIDEr": Cider().compute_score(gts, res)[0],
    }


@pytest.mark.parametrize("seed", range(6))
def test_bleu_rouge_cider_equal_pycocoevalcap(seed):
    hyps, refs = random_set(seed)
    h_tok, r_tok = mc.tokenized(hyps, refs)
    ours = mc.caption_scores(hyps, refs, meteor_mode="off")
    theirs = pycoco(h_tok, r_tok)
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(value, abs=1e-6), key
    assert ours["METEOR"] is None and "off" in ours["METEOR_reason"]


def test_edge_sets_equal_pycocoevalcap():
    cases = [
        (["a dog barks"], [["a dog barks"]]),  # one sample: idf 0, CIDEr 0
        ([None, "a dog"], [["a dog barks loudly"], ["two men"]]),
        (["the the the the"], [["the cat", "the the dog"]]),  # clipped counts
        ([""], [["!!!", "a dog"]]),  # empty hypothesis and a reference with no word
    ]
    for hyps, refs in cases:
        h_tok, r_tok = mc.tokenized(hyps, refs)
        ours, theirs = mc.caption_scores(hyps, refs, meteor_mode="off"), pycoco(h_tok, r_tok)
        for key, value in theirs.items():
            assert ours[key] == pytest.approx(value, abs=1e-6), (hyps, refs, key)


@needs_java
def test_meteor_is_pycocoevalcaps_and_ptb_tokenises_as_coco_caption():
    from pycocoevalcap.meteor.meteor import Meteor

    hyps, refs = random_set(9, n=12)
    h_tok, r_tok = mc.tokenized(hyps, refs)
    scorer = Meteor()  # one JVM for both sides (it takes seconds to start)
    gts = {i: [" ".join(r) for r in rs] for i, rs in enumerate(r_tok)}
    expected, _ = scorer.compute_score(gts, {i: [" ".join(h)] for i, h in enumerate(h_tok)})
    ours = mc.meteor(h_tok, r_tok, scorer=scorer)
    del scorer
    assert ours == pytest.approx(expected, abs=1e-6) and 0 < ours < 1
    assert mc.ptb_tokenize(["A man's guitar-solo, loudly!"]) == [["a", "man", "'s", "guitar-solo", "loudly"]]
    assert mc.tokenize("A man's guitar-solo, loudly!") == ["a", "man", "s", "guitar", "solo", "loudly"]
    # plain captions tokenise alike, so the metrics agree between the two tokenisations
    plain = mc.caption_scores(hyps[:8], refs[:8], tokenizer="ptb", meteor_mode="off")
    simple = mc.caption_scores(hyps[:8], refs[:8], meteor_mode="off")
    assert plain["CIDEr"] == pytest.approx(simple["CIDEr"], abs=1e-9) and plain["tokenizer"] == "ptb"


def test_meteor_modes_without_java(monkeypatch):
    monkeypatch.setattr(mc.shutil, "which", lambda name: None)
    out = mc.caption_scores(["a dog"], [["a dog barks"]])
    assert out["METEOR"] is None and "java" in out["METEOR_reason"]
    with pytest.raises(RuntimeError, match="java"):
        mc.caption_scores(["a dog"], [["a dog barks"]], meteor_mode="on")
    with pytest.raises(RuntimeError, match="java"):
        mc.tokenized(["a dog"], [["a dog barks"]], tokenizer="ptb")
    with pytest.raises(ValueError, match="tokenizer"):
        mc.tokenized(["a dog"], [["a dog barks"]], tokenizer="nltk")
