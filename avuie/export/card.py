"""The dataset card of an hf export (DEST/README.md): YAML metadata the Hugging Face Hub reads, then prose.

The metadata names one config per source (and `all`, the default) with its splits' files in the layout `avuie push`
uploads (`data/<source>/<split>-*.parquet`), the license of each source as its build recorded it, and the build
digest: the sha256 of every exported build's build.json (sorted by source), so a published copy names exactly
what was built. The prose adds a table of sources (family, rows per split, license, release and citation), how to
load the data, and the citations of each source release and of Crab+.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

# The release each source is built from and the paper to cite for it (authors, title, venue, year).
CITATIONS: dict[str, tuple[str, str]] = {
    "ave": ("AVE", "Tian, Shi, Li, Duan, Xu. Audio-Visual Event Localization in Unconstrained Videos. ECCV 2018."),
    "unav": ("UnAV-100", "Geng, Wang, Zhang, Cao, Zhou. Dense-Localizing Audio-Visual Events in Untrimmed Videos: "
             "A Large-Scale Benchmark and Baseline. CVPR 2023."),
    "avvp": ("LLP (AVVP)", "Tian, Li, Xu. Unified Multisensory Perception: Weakly-Supervised Audio-Visual Video "
             "Parsing. ECCV 2020."),
    "avqa": ("MUSIC-AVQA", "Li, Wei, Liu, Zhang, Wen, Hu. Learning to Answer Questions in Dynamic Audio-Visual "
             "Scenarios. CVPR 2022."),
    "avqa_thu": ("AVQA", "Yang, Ni, Zheng, Xie, Zhang, Zhang, Zhu. AVQA: A Dataset for Audio-Visual Question "
                 "Answering on Videos. ACM Multimedia 2022."),
    "s4": ("AVSBench S4", "Zhou, Wang, Zhang, Sun, Zhang, Birchfield, Guo, Kong, Wang, Zhong. Audio-Visual "
           "Segmentation. ECCV 2022."),
    "ms3": ("AVSBench MS3", "Zhou, Wang, Zhang, Sun, Zhang, Birchfield, Guo, Kong, Wang, Zhong. Audio-Visual "
            "Segmentation. ECCV 2022."),
    "ref_avs": ("Ref-AVS", "Wang, Sun, Li, Hu, Wen. Ref-AVS: Refer and Segment Objects in Audio-Visual Scenes. "
                "ECCV 2024."),
    "arig": ("AVSBench S4 (audio-referred image grounding)", "Zhou, Wang, Zhang, Sun, Zhang, Birchfield, Guo, "
             "Kong, Wang, Zhong. Audio-Visual Segmentation. ECCV 2022."),
    "avcap": ("VALOR-32K", "Chen, He, Zhu, Liu, Wang, Liu, Liu, Xu, Wang, Liu. VALOR: Vision-Audio-Language "
              "Omni-Perception Pretraining Model and Dataset. arXiv 2304.08345, 2023."),
    "a2v": ("AVE (audio-to-video pairs)", "Tian, Shi, Li, Duan, Xu. Audio-Visual Event Localization in "
            "Unconstrained Videos. ECCV 2018."),
    "v2a": ("AVE (video-to-audio pairs)", "Tian, Shi, Li, Duan, Xu. Audio-Visual Event Localization in "
            "Unconstrained Videos. ECCV 2018."),
    "ks": ("Kinetics-Sounds", "Arandjelovic, Zisserman. Look, Listen and Learn. ICCV 2017; Kay et al. The "
           "Kinetics Human Action Video Dataset. arXiv 1705.06950, 2017."),
    "ucf": ("UCF101", "Soomro, Zamir, Shah. UCF101: A Dataset of 101 Human Actions Classes From Videos in The "
            "Wild. arXiv 1212.0402, 2012."),
    "meld": ("MELD", "Poria, Hazarika, Majumder, Naik, Cambria, Mihalcea. MELD: A Multimodal Multi-Party Dataset "
             "for Emotion Recognition in Conversations. ACL 2019."),
    "mer24": ("MER2024", "Lian et al. MER 2024: Semi-Supervised Learning, Noise Robustness, and Open-Vocabulary "
              "Multimodal Emotion Recognition. arXiv 2404.17113, 2024."),
    "cremad": ("CREMA-D", "Cao, Cooper, Keutmann, Gur, Nenkova, Verma. CREMA-D: Crowd-sourced Emotional "
               "Multimodal Actors Dataset. IEEE Transactions on Affective Computing, 2014."),
    "mafw": ("MAFW", "Liu, Zhang, Wang, Zhou, Li, Lu. MAFW: A Large-scale, Multi-modal, Compound Affective "
             "Database for Dynamic Facial Expression Recognition in the Wild. ACM Multimedia 2022."),
    "dfew": ("DFEW", "Jiang, Zong, Zheng, Lu, Xin, Wang, Zhang. DFEW: A Large-Scale Database for Recognizing "
             "Dynamic Facial Expressions in the Wild. ACM Multimedia 2020."),
}  # fmt: skip
CRAB_PLUS = "Crab+ and AV-UIE v2: arXiv 2603.04128."
CARD = "README.md"
REPO = "USER/NAME"  # the card's placeholder for the Hub repository; `avuie push` writes the real name


def build_facts(builds: list[Path], sources: set[str]) -> dict[str, dict[str, Any]]:
    """{source: build.json content} of the builds that hold an exported source."""
    facts: dict[str, dict[str, Any]] = {}
    for build in builds:
        path = Path(build) / "build.json"
        info = json.loads(path.read_text()) if path.is_file() else {}
        if info.get("source") in sources:
            facts[info["source"]] = info
    return facts


def build_digest(facts: dict[str, dict[str, Any]]) -> str:
    """sha256 of the builds' build.json contents, sorted by source (key order fixed)."""
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()


def hub_path(source: str, split: str) -> str:
    """Where `avuie push` puts the rows of one source and split in the Hub repository."""
    return f"data/{source}/{split}-00000-of-00001.parquet"


def metadata(by_split: dict[str, dict[str, int]], facts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The card's YAML metadata: configs (all + one per source) with their splits' files, licenses, digest."""
    sources = sorted({s for counts in by_split.values() for s in counts})
    configs: list[dict[str, Any]] = [
        {
            "config_name": "all",
            "default": True,
            "data_files": [
                {"split": split, "path": f"data/*/{split}-*.parquet"} for split in sorted(by_split)
            ],
        }
    ]
    for source in sources:
        splits = [split for split in sorted(by_split) if by_split[split].get(source)]
        configs.append(
            {
                "config_name": source,
                "data_files": [{"split": split, "path": hub_path(source, split)} for split in splits],
            }
        )
    return {
        "pretty_name": "AV-UIE v2 (built with avuie)",
        "license": "other",
        "license_name": "per-source",
        "license_details": "; ".join(f"{s}: {facts.get(s, {}).get('license', 'unknown')}" for s in sources),
        "language": ["en"],
        "tags": ["audio-visual", "instruction-tuning", "multimodal", "crab-plus", "avuie"],
        "configs": configs,
        "avuie": {
            "build_digest": build_digest(facts),
            "builds": {
                s: {
                    "fingerprint": facts.get(s, {}).get("fingerprint"),
                    "records_digest": (facts.get(s, {}).get("hashes") or {}).get("records"),
                    "avuie_version": facts.get(s, {}).get("avuie_version"),
                }
                for s in sources
            },
        },
    }


def _source_rows(by_split: dict[str, dict[str, int]], facts: dict[str, dict[str, Any]]) -> list[str]:
    rows = ["| source | family | rows per split | license | release |", "|---|---|---|---|---|"]
    for source in sorted({s for counts in by_split.values() for s in counts}):
        counts = ", ".join(
            f"{split} {by_split[split][source]:,}" for split in sorted(by_split) if source in by_split[split]
        )
        info = facts.get(source, {})
        release = CITATIONS.get(source, (source, ""))[0]
        rows.append(
            f"| {source} | {info.get('family', '')} | {counts} | {info.get('license', 'unknown')} | {release} |"
        )
    return rows


def card_text(by_split: dict[str, dict[str, int]], facts: dict[str, dict[str, Any]]) -> str:
    """The whole card: `---` YAML metadata `---`, then the prose."""
    meta = metadata(by_split, facts)
    sources = sorted({s for counts in by_split.values() for s in counts})
    cites = [f"- **{s}** ({CITATIONS[s][0]}): {CITATIONS[s][1]}" for s in sources if s in CITATIONS]
    body = [
        "# AV-UIE v2, built with avuie",
        "",
        "Audio-visual instruction samples (frames, 16 kHz audio, masks, an instruction, a reasoning chain and a "
        "tagged answer each) built by avuie from each source's original release. Every source keeps its own license: use each part under its terms.",
        "",
        *_source_rows(by_split, facts),
        "",
        "## Load",
        "",
        "```python",
        "import datasets",
        f'ds = datasets.load_dataset("{REPO}", "all")  # or one source: datasets.load_dataset("{REPO}", "ave")',
        'ds = ds.cast_column("audio", datasets.List(datasets.Audio(decode=False)))  # without torchcodec: WAV bytes',
        "```",
        "",
        "Columns: the sample's text and identity, `target` (the typed target of its `kind`), `media` (measurements), "
        "`frames` (List(Image)), `audio` (List(Audio), 16 kHz WAV), `masks` (List(Image)) and `mask_files`.",
        "",
        "## Build",
        "",
        f"Build digest (sha256 of the builds' build.json, sorted by source): `{meta['avuie']['build_digest']}`.",
        "",
        "## Citations",
        "",
        *cites,
        f"- {CRAB_PLUS}",
        "",
    ]
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n\n" + "\n".join(body)


def write_card(builds: list[Path], dest: Path, by_split: dict[str, dict[str, int]]) -> Path:
    """Write DEST/README.md for the export's rows ({split: {source: count}}); return its path."""
    facts = build_facts(builds, {s for counts in by_split.values() for s in counts})
    path = Path(dest) / CARD
    path.write_text(card_text(by_split, facts))
    return path


def read_metadata(dest: Path) -> dict[str, Any]:
    """The YAML metadata of an export's card (raises ValueError when DEST has no card)."""
    text = (Path(dest) / CARD).read_text() if (Path(dest) / CARD).is_file() else ""
    if not text.startswith("---\n"):
        raise ValueError(
            f"{dest} has no dataset card ({CARD} with YAML metadata): export it with --format hf"
        )
    return yaml.safe_load(text[4 : text.index("\n---", 4)])
