"""House rules that a newcomer and CI rely on: the two commands, the torch pin, one-way imports, no torch on
the build path."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

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
    torch_at = setup.index('pip install -q "torch==2.13.0"')  # the repo's .venv: pinned, installed first
    assert torch_at < setup.index("pip install -q -e")
    pyproject = (ROOT / "pyproject.toml").read_text()  # the package: a range, never an exact pin
    deps = re.findall(r'"torch[^"]*"', pyproject)
    assert deps and all(dep == '"torch>=2.13,<3"' for dep in deps)


# ---------------------------------------------------------------- the house plan (docs/ARCHITECTURE.md)

# Folder on disk -> import name of its package.
PACKAGES = {"avuie": "avuie", "builders": "avuie.builders", "schemas": "avuie.schemas", "shards": "avuie.shards",
            "trainer": "avuie.trainer"}  # fmt: skip

# Room -> the rooms it may import (its own always). PLAN.md's table; "*" = anything, "-cli" = anything but cli.
ALLOWED = {
    "schemas": (),
    "media": (),
    "shards": ("schemas",),
    "builders": ("schemas", "media"),
    "reasoning": ("schemas",),
    "samples": ("media", "schemas"),
    "build": ("builders", "media", "reasoning", "schemas", "shards", "samples"),
    "curate": ("build", "reasoning", "shards", "schemas", "media"),
    "catalog": ("shards", "schemas"),
    "export": ("catalog", "shards", "schemas", "media"),
    "eval": ("schemas", "shards", "reasoning"),
    "trainer": ("schemas", "shards"),
    "view": ("catalog", "curate", "shards", "schemas", "media", "eval"),
    "demo": "-cli",
    "cli": "*",
}

# Module (or module:function) -> why it may break a size limit for now. Each entry names the work that removes it.
SIZE_EXCEPTIONS: dict[str, str] = {}

# Import circles still allowed, as sorted module lists, with the work that removes them.
CIRCLE_EXCEPTIONS: dict[tuple[str, ...], str] = {}


def _modules() -> dict[str, Path]:
    """Every module of our packages: import name -> file."""
    mods = {}
    for folder, package in PACKAGES.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = [p for p in path.relative_to(ROOT / folder).with_suffix("").parts if p != "__init__"]
            if "sample_data" not in parts:
                mods[".".join([package, *parts])] = path
    return mods


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The modules of ours that `name` imports anywhere in its file (top level or inside functions)."""
    base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            module = (
                ".".join(base[: len(base) - node.level + 1] + [node.module or ""])
                if node.level
                else node.module
            )
            module = module.rstrip(".")
            # `from pkg import sub` depends on the submodule; `from pkg import name` on the package itself
            targets = [
                f"{module}.{a.name}" if f"{module}.{a.name}" in MODULES else module for a in node.names
            ]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def room(module: str) -> str:
    """The room of a module: avuie.build.plan -> build, avuie.demo -> demo, avuie.__main__ -> cli."""
    parts = module.split(".")
    if parts[1:] in ([], ["__main__"]):
        return "cli"
    return parts[1]


def test_every_module_is_in_a_room_of_the_plan():
    assert sorted({room(m) for m in MODULES} - set(ALLOWED)) == []


def test_imports_only_go_down():
    bad = []
    for module, targets in sorted(GRAPH.items()):
        mine, allowed = room(module), ALLOWED[room(module)]
        for target in sorted(targets):
            theirs = room(target)
            ok = (
                theirs == mine
                or allowed == "*"
                or (allowed == "-cli" and theirs != "cli")
                or theirs in allowed
            )
            if not ok and module not in ("avuie",):
                bad.append(f"{module} ({mine}) imports {target} ({theirs})")
    assert bad == []


def _circles() -> list[tuple[str, ...]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[tuple[str, ...]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
            if len(component) > 1:
                out.append(tuple(sorted(component)))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return out


def test_no_import_circle():
    assert [c for c in _circles() if c not in CIRCLE_EXCEPTIONS] == []
    assert [c for c in CIRCLE_EXCEPTIONS if c not in _circles()] == [], (
        "a circle that is gone: remove its exception"
    )


def test_the_graph_sees_lazy_imports():
    # the demo builds through avuie.build (inside a function); a test of the test's own parser
    assert "avuie.build.sources" in GRAPH["avuie.demo"] and "avuie.cli.build" not in GRAPH["avuie.demo"]


def _too_big() -> list[str]:
    found = []
    for name, path in sorted(MODULES.items()):
        text = path.read_text()
        if len(text.splitlines()) > 400:
            found.append(name)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                start = min([node.lineno] + [d.lineno for d in node.decorator_list])
                if node.end_lineno - start + 1 > 60:
                    found.append(f"{name}:{node.name}")
    return found


def test_no_module_over_400_lines_no_function_over_60():
    assert [x for x in _too_big() if x not in SIZE_EXCEPTIONS] == []
    assert [x for x in SIZE_EXCEPTIONS if x not in _too_big()] == [], "an exception that is fixed: remove it"


def _strings(path: Path) -> list[tuple[int, str]]:
    """(line, text) of the string constants of a file that are not docstrings (f-string parts included)."""
    tree = ast.parse(path.read_text())
    docs = {
        id(n.body[0].value)
        for n in ast.walk(tree)
        if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and n.body
        and isinstance(n.body[0], ast.Expr)
        and isinstance(n.body[0].value, ast.Constant)
    }
    return [
        (n.lineno, n.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
    ]


def test_only_shards_layout_names_shards_and_markers():
    naming = re.compile(r"\.done\.json$|^\*+/?\*?\.tar$|\*\.tar$|^shards/")
    bad = [
        f"{path.relative_to(ROOT)}:{line} {text!r}"
        for name, path in MODULES.items()
        if name != "avuie.shards.layout"
        for line, text in _strings(path)
        if naming.search(text)
    ]
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


ROOM_FOLDERS = {"schemas": "schemas/", "shards": "shards/", "builders": "builders/", "trainer": "trainer/",
                "demo": "avuie/demo.py"}  # fmt: skip


def test_architecture_page_has_a_line_per_room():
    page = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    table = page.split("## The rooms", 1)[1].split("\n## ", 1)[0]
    missing = [r for r in ALLOWED if f"| `{ROOM_FOLDERS.get(r, f'avuie/{r}/')}` |" not in table]
    assert missing == []
