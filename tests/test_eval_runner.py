"""`avuie eval` end to end on a real shard build (tar + manifest) of every target kind, and `avuie transfer`."""

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from avuie.cli import app
from avuie.cli.eval import default_chart_path
from avuie.eval.metrics_caption import java_reason
from avuie.eval.runner import evaluate
from avuie.eval.transfer import load_report, plot_transfer, transfer_report
from tests.evalkit import FAMILY, N, Sample, write_build, write_preds


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> tuple[Path, list[Sample]]:
    root = tmp_path_factory.mktemp("build")
    return root, write_build(root)


def test_perfect_predictions_score_perfectly_on_every_task(build, tmp_path):
    root, samples = build
    report = evaluate(write_preds(tmp_path / "p.jsonl", samples), root, mask_backend="box")
    assert set(report["tasks"]) == set(FAMILY) and report["mask_backend"] == "box_fill"
    for task, result in report["tasks"].items():
        assert result["n"] == N and result["n_unparseable"] == 0 and result["n_unpredicted"] == 0, task
        expected = 10.0 if task == "avcap" else 1.0  # CIDEr's scale
        assert result["primary"]["value"] == pytest.approx(expected, abs=1e-6), task
    metrics = report["tasks"]
    assert metrics["avvp"]["metrics"]["event"]["event_av"] == 1.0
    assert (
        metrics["ref_avs"]["metrics"]["test_n"]["S"] == 0.0
        and metrics["ref_avs"]["metrics"]["test_s"]["F"] == 1.0
    )
    assert metrics["arig"]["metrics"]["auc"] == pytest.approx(1.0)
    caption = metrics["avcap"]["metrics"]
    assert (
        caption["BLEU-4"] == pytest.approx(1.0)
        and caption["ROUGE-L"] == 1.0
        and caption["tokenizer"] == "simple"
    )
    if java_reason() is None:  # METEOR runs wherever pycocoevalcap and Java are there
        assert 0.5 < caption["METEOR"] <= 1.0 and caption["METEOR_reason"] is None
    else:
        assert caption["METEOR"] is None and caption["METEOR_reason"] == java_reason()
    assert metrics["meld"]["metrics"]["uar"] == 1.0 and "uar" not in metrics["ks"]["metrics"]
    assert set(metrics["avqa"]["metrics"]["by_modality"]) == {"Audio", "Audio-Visual"}


def test_unparseable_wrong_and_missing_predictions(build, tmp_path):
    root, samples = build
    chosen = [s for s in samples if s.source in ("ave", "ks", "ref_avs", "s4")]
    wrong = {"ave/test/0", "ks/test/0"}
    garbled = {s.id for s in chosen if s.source in ("ref_avs", "s4") and s.native_id == "0"}

    def edit(s: Sample) -> str:
        if s.id in garbled:
            return "I cannot tell."
        if s.id in wrong:
            return (
                "<event>Bark</event> <range>0,10</range>" if s.source == "ave" else "<answer>bowling</answer>"
            )
        return s.response

    preds = write_preds(tmp_path / "p.jsonl", [s for s in chosen if s.native_id != "5"], edit)
    with preds.open("a") as fh:
        fh.write(json.dumps({"id": "ks/test/999", "response": "<answer>x</answer>"}) + "\n")
    report = evaluate(preds, root, tasks=["ave", "ks", "s4", "ref_avs"], mask_backend="auto")
    tasks = report["tasks"]
    assert report["n_unknown_ids"] == 1 and report["unknown_ids"] == ["ks/test/999"]
    assert tasks["ks"]["n"] == N - 1 and tasks["ks"]["n_unpredicted"] == 1
    assert tasks["ks"]["primary"]["value"] == pytest.approx((N - 2) / (N - 1))
    # ave sample 0: truth Church bell [0,3); answer Bark [0,10) -> 0 of 10 segments right
    assert tasks["ave"]["primary"]["value"] == pytest.approx((N - 2) / (N - 1))
    assert tasks["s4"]["n_unparseable"] == 1 and tasks["s4"]["metrics"]["mIoU"] == pytest.approx(
        (N - 2) / (N - 1)
    )
    assert tasks["s4"]["mask_backend"] == "box_fill" and "sam2" in report["mask_backend_reason"]
    assert tasks["ref_avs"]["n_unparseable"] == 1 and tasks["ref_avs"]["metrics"]["presence_accuracy"] < 1


def test_box_fill_of_a_disc_mask_is_imperfect_and_constraint_breaks_still_score(build, tmp_path):
    root, samples = build
    arig = [s for s in samples if s.source == "arig"]
    # a box past the frame breaks the target's constraint: scored as written, counted
    preds = write_preds(tmp_path / "p.jsonl", arig, lambda s: s.response.replace(",90]", ",300]"))
    result = evaluate(preds, root, tasks=["arig"])["tasks"]["arig"]
    assert result["n_constraint_violations"] == N and result["n_unparseable"] == 0
    assert 0 < result["metrics"]["mean_iou"] < 1 and result["metrics"]["class_accuracy"] == 1.0


def test_reading_without_manifest_and_bad_inputs(build, tmp_path):
    root, samples = build
    bare = tmp_path / "bare"
    (bare / "shards").mkdir(parents=True)
    for tar in root.glob("ks/**/*.tar"):
        (bare / "shards" / tar.name).write_bytes(tar.read_bytes())
    ks = [s for s in samples if s.source == "ks"]
    report = evaluate(write_preds(tmp_path / "p.jsonl", ks[:3]), bare)
    assert (
        report["tasks"]["ks"]["primary"]["value"] == 1.0 and report["tasks"]["ks"]["n_unpredicted"] == N - 3
    )
    with pytest.raises(FileNotFoundError, match="no shards"):
        evaluate(tmp_path / "p.jsonl", tmp_path / "nowhere")
    with pytest.raises(ValueError, match="no prediction"):
        evaluate(tmp_path / "p.jsonl", bare, tasks=["ave"])


def test_malformed_prediction_lines_are_reported_not_scored(build, tmp_path):
    root, samples = build
    ks = [s for s in samples if s.source == "ks"]
    lines = [json.dumps({"id": s.id, "response": s.response}) for s in ks[:3]]
    lines += [
        json.dumps({"id": ks[3].id}),  # line 4: no response key
        "not json {",  # line 5
        "",  # blank: skipped, not malformed
        json.dumps({"id": ks[4].id, "response": None}),  # line 7
        json.dumps(["ks/test/5", "x"]),  # line 8: not an object
        json.dumps({"response": "<answer>x</answer>"}),  # line 9: no id
        json.dumps({"id": ks[5].id, "response": "no answer here"}),  # line 10: well formed, unparseable
    ]
    preds = tmp_path / "p.jsonl"
    preds.write_text("\n".join(lines) + "\n")
    report = evaluate(preds, root, tasks=["ks"])
    assert report["n_malformed_lines"] == 5 and report["malformed_lines"] == [4, 5, 7, 8, 9]
    assert report["malformed_reasons"] == {'"response" is not a string': 1, 'no "response" key': 1,
                                           'no string "id"': 1, "not JSON": 1, "not a JSON object": 1}  # fmt: skip
    ks_result = report["tasks"]["ks"]
    assert ks_result["n"] == 4 and ks_result["n_unparseable"] == 1  # only the well-formed unparseable line
    assert ks_result["n_malformed"] == 2 and ks_result["n_unpredicted"] == 2
    assert ks_result["primary"]["value"] == pytest.approx(3 / 4)
    clean = evaluate(write_preds(tmp_path / "clean.jsonl", ks), root, tasks=["ks"])
    assert (
        clean["n_malformed_lines"] == 0
        and clean["malformed_lines"] == []
        and clean["malformed_reasons"] == {}
    )
    many = tmp_path / "many.jsonl"
    many.write_text("".join(json.dumps({"id": f"ks/test/{i}"}) + "\n" for i in range(30)))
    with pytest.raises(
        ValueError, match=r"30 malformed lines, e\.g\. line 1, 2, 3, 4, 5; no \"response\" key: 30"
    ):
        evaluate(many, root)


def test_cli_eval_names_malformed_lines(build, tmp_path):
    root, samples = build
    ks = [s for s in samples if s.source == "ks"]
    preds = write_preds(tmp_path / "p.jsonl", ks[:2])
    with preds.open("a") as fh:
        fh.write(json.dumps({"id": ks[2].id}) + "\n" + "garbage\n")
    res = CliRunner().invoke(
        app, ["eval", "--pred", str(preds), "--data", str(root), "--to", str(tmp_path / "r.json")]
    )
    assert res.exit_code == 0, res.output
    said = " ".join(res.output.split())
    assert "2 malformed prediction lines were not scored" in said and "lines 3, 4" in said
    assert json.loads((tmp_path / "r.json").read_text())["malformed_lines"] == [3, 4]


# ------------------------------------------------------------------ transfer


def report_of(scores: dict[str, float], metric: str = "accuracy") -> dict:
    return {
        "tasks": {
            t: {"primary": {"metric": metric, "value": v, "higher_is_better": True}}
            for t, v in scores.items()
        }
    }


def test_transfer_report_deltas_and_share(tmp_path):
    singles = [report_of({"ave": 0.70, "ks": 0.80}), report_of({"avqa": 0.60, "meld": 0.50})]
    multi = report_of({"ave": 0.75, "ks": 0.78, "avqa": 0.66, "meld": 0.50, "ucf": 0.9})
    result = transfer_report(singles, multi)
    deltas = {t: r["delta"] for t, r in result["tasks"].items()}
    assert deltas == pytest.approx({"ave": 0.05, "ks": -0.02, "avqa": 0.06, "meld": 0.0})
    assert result["n_tasks"] == 4 and result["n_positive"] == 2 and result["share_positive"] == 0.5
    assert result["multi_only"] == ["ucf"] and result["mean_gain"] == pytest.approx(0.0225)
    assert transfer_report(singles, multi, tolerance=0.055)["n_positive"] == 1
    lower = {"tasks": {"x": {"primary": {"metric": "S", "value": 0.2, "higher_is_better": False}}}}
    better = {"tasks": {"x": {"primary": {"metric": "S", "value": 0.1, "higher_is_better": False}}}}
    assert transfer_report([lower], better)["tasks"]["x"]["gain"] == pytest.approx(0.1)  # lower S is better
    with pytest.raises(ValueError, match="more than one"):
        transfer_report([singles[0], singles[0]], multi)
    with pytest.raises(ValueError, match="differs"):
        transfer_report([report_of({"ave": 0.7}, "mIoU")], multi)
    chart = plot_transfer(result, tmp_path / "c.png")
    assert Image.open(chart).size[0] > 100


def test_cli_eval_then_transfer(build, tmp_path):
    root, samples = build
    ks = [s for s in samples if s.source in ("ks", "ave")]
    runner = CliRunner()
    good = write_preds(tmp_path / "good.jsonl", ks)
    bad = write_preds(tmp_path / "bad.jsonl", ks, lambda s: s.response if s.native_id < "3" else "no idea")
    run_dir = tmp_path / "single_run"
    res = runner.invoke(
        app, ["eval", "--pred", str(bad), "--data", str(root), "--all", "--to", str(run_dir / "report.json")]
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["eval", "--pred", str(good), "--data", str(root), "--task", "ks", "--task", "ave",
                              "--to", str(tmp_path / "multi.json")])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert load_report(run_dir)["tasks"]["ks"]["n_unparseable"] == 3
    res = runner.invoke(app, ["transfer", "--single", str(run_dir), "--multi", str(tmp_path / "multi.json"),
                              "--chart", str(tmp_path / "t.png"), "--to", str(tmp_path / "t.json")])  # fmt: skip
    assert res.exit_code == 0, res.output
    out = json.loads((tmp_path / "t.json").read_text())
    assert out["share_positive"] == 1.0 and out["tasks"]["ks"]["delta"] == pytest.approx(0.5)
    assert (tmp_path / "t.png").stat().st_size > 1000
    res = runner.invoke(app, ["eval", "--pred", str(good), "--data", str(root), "--task", "nope"])
    assert res.exit_code != 0 and "unknown task" in " ".join(res.output.split())
    res = runner.invoke(
        app, ["transfer", "--single", str(tmp_path / "missing"), "--multi", str(tmp_path / "multi.json")]
    )
    assert res.exit_code == 1 and "does not exist" in " ".join(res.output.split())


def test_cli_transfer_chart_defaults_beside_the_report_or_is_skipped(tmp_path, monkeypatch):
    single, multi = tmp_path / "single.json", tmp_path / "multi.json"
    single.write_text(json.dumps(report_of({"ave": 0.70, "ks": 0.80})))
    multi.write_text(json.dumps(report_of({"ave": 0.75, "ks": 0.78})))
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    runner = CliRunner()
    base = ["transfer", "--single", str(single), "--multi", str(multi)]
    res = runner.invoke(app, [*base, "--to", str(tmp_path / "out" / "t.json")])
    assert res.exit_code == 0, res.output
    assert Image.open(tmp_path / "out" / "t.png").size[0] > 100
    assert json.loads((tmp_path / "out" / "t.json").read_text())["chart"] == str(tmp_path / "out" / "t.png")
    res = runner.invoke(app, base)
    assert res.exit_code == 0, res.output
    assert "no chart drawn" in " ".join(res.output.split())
    res = runner.invoke(
        app, [*base, "--chart", str(tmp_path / "c.png"), "--to", str(tmp_path / "c.png.json")]
    )
    assert res.exit_code == 0 and (tmp_path / "c.png").is_file() and not (tmp_path / "c.png.png").exists()
    assert list(work.iterdir()) == []  # nothing lands in the current directory
    assert (
        default_chart_path(Path("out/r.png")) == Path("out/r.chart.png") and default_chart_path(None) is None
    )
