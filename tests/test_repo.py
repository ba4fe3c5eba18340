"""House rules that a newcomer and CI rely on: the two commands, the torch pin, one-way imports, no torch on
the build path."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_readme_has_exactly_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## The two commands", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert commands == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()


def test_torch_is_installed_first_and_pinned():
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    torch_at = setup.index('pip install -q "torch==2.13.0"')
    assert torch_at < setup.index("pip install -q -e")
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert all(dep == '"torch==2.13.0"' for dep in re.findall(r'"torch[^"]*"', pyproject))


def _our_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level and node.module is None:
                continue
            mod = node.module or ""
            if node.level:
                continue  # relative imports stay inside the package
            names.add(mod)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return {n for n in names if n.split(".")[0] in ("avuie", "schemas", "builders", "shards", "trainer")}


ALLOWED = {
    "schemas": (),
    "builders": ("avuie.schemas", "avuie.builders", "avuie.media", "avuie.media.synth"),
    "shards": ("avuie.schemas", "avuie.shards"),
    "trainer": ("avuie.schemas", "avuie.shards", "avuie.trainer"),
}


@pytest.mark.parametrize("folder", sorted(ALLOWED))
def test_data_flows_one_way(folder):
    bad = []
    for path in sorted((ROOT / folder).glob("*.py")):
        for mod in _our_imports(path):
            if not any(mod == a or mod.startswith(a + ".") for a in ALLOWED[folder]):
                bad.append(f"{path.name} imports {mod}")
    assert bad == []


def test_build_path_imports_no_torch():
    code = (
        "import sys, avuie.cli, avuie.build.pipeline, avuie.builders, avuie.shards.writer, avuie.catalog.db;"
        "avuie.builders.load_all();"
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'datasets') if m in sys.modules];"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
