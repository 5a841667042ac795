"""MkDocs hook: the examples gallery, run at build time.

Every ``docs/examples/*.py`` is a short script on small data. When the site is built, each one
runs in a fresh temporary folder (``python SCRIPT``, one thread, matplotlib without a display);
the PNG files it saves there (in the order saved; the first is the gallery's thumbnail) and
what it prints become its page, ``examples/NAME.md``, with the
script's source below them. A script that fails or runs past ``TIMEOUT_S`` fails the build, so
the gallery never shows code that does not work. ``examples/index.md`` is the gallery itself,
one card per script with its first figure.

Results are cached in ``build/docs-cache/examples/``, keyed by the script and by every source
file of aekit: a rebuild after editing a page (``scripts/docs.sh --serve``) does not rerun the
examples, and any change to a script or to aekit does.

A script's docstring is its page's text: the first line is the title, the rest the description
(Markdown). Scripts are listed in the order of their file names.
"""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

log = logging.getLogger("mkdocs.hooks.examples")

FOLDER = "examples"
TIMEOUT_S = 300
CACHE = "build/docs-cache/examples"  # relative to mkdocs.yml


@dataclass
class Example:
    """One gallery script and what running it produced."""

    path: Path
    title: str
    description: str
    stdout: str = ""
    figures: list[tuple[str, bytes]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def name(self) -> str:
        return self.path.stem


def scripts(docs_dir: Path) -> list[Example]:
    """The gallery's scripts, with their titles read from the docstrings (not run yet)."""
    found = []
    for path in sorted((docs_dir / FOLDER).glob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        title, _, rest = doc.strip().partition("\n")
        if not title:
            raise PluginError(f"{path}: a gallery script needs a docstring whose first line "
                              "is its title")
        found.append(Example(path, title.strip().rstrip("."), rest.strip()))
    return found


def source_key(example: Example, package: Path) -> str:
    """A digest of the script and of every Python file of aekit."""
    digest = hashlib.sha256(example.path.read_bytes())
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:24]


def run_cached(example: Example, package: Path, cache: Path) -> None:
    """``run``, unless the cache holds a result for the same script and aekit sources."""
    folder = cache / f"{example.name}-{source_key(example, package)}"
    meta = folder / "result.json"
    if meta.is_file():
        saved = json.loads(meta.read_text(encoding="utf-8"))
        example.stdout, example.seconds = saved["stdout"], saved["seconds"]
        example.figures = [(name, (folder / name).read_bytes()) for name in saved["figures"]]
        log.info("example %s: from the cache (%s)", example.path.name, folder)
        return
    run(example)
    for old in cache.glob(f"{example.name}-*"):
        for f in old.iterdir():
            f.unlink()
        old.rmdir()
    folder.mkdir(parents=True)
    for name, data in example.figures:
        (folder / name).write_bytes(data)
    meta.write_text(json.dumps({"stdout": example.stdout, "seconds": example.seconds,
                                "figures": [name for name, _ in example.figures]}),
                    encoding="utf-8")


def run(example: Example) -> None:
    """Run one script in a temporary folder; keep its output and the PNG files it saved."""
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONHASHSEED="0")
    with tempfile.TemporaryDirectory(prefix=f"aekit-example-{example.name}-") as tmp:
        start = time.perf_counter()
        try:
            done = subprocess.run([sys.executable, str(example.path.resolve())], cwd=tmp,
                                  env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            raise PluginError(f"example {example.path.name} ran past {TIMEOUT_S} s") from exc
        example.seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise PluginError(f"example {example.path.name} failed (exit {done.returncode}):\n"
                              f"{done.stderr[-3000:]}")
        example.stdout = done.stdout.rstrip()
        saved = sorted(Path(tmp).glob("*.png"), key=lambda p: (p.stat().st_mtime_ns, p.name))
        example.figures = [(png.name, png.read_bytes()) for png in saved]  # in the order saved
    if not example.figures:
        raise PluginError(f"example {example.path.name} saved no .png figure")
    log.info("example %s: %.1f s, %d figure(s)", example.path.name, example.seconds,
             len(example.figures))


def page(example: Example) -> str:
    """The Markdown page of one example."""
    source = _code_only(example.path.read_text(encoding="utf-8")).rstrip()
    out = [f"# {example.title}", "", example.description, ""]
    for name, _ in example.figures:
        out += [f"![{example.title}: {name}]({_figure_uri(example, name)})", ""]
    if example.stdout:
        out += ["Output:", "", "```text", example.stdout, "```", ""]
    out += [f"Source (download: [{example.path.name}]({example.path.name}); it ran in "
            f"{example.seconds:.0f} s when this page was built):", "",
            "```python", source, "```", ""]
    return "\n".join(out)


def _code_only(source: str) -> str:
    """The script without its docstring, which is the page's text already."""
    body = ast.parse(source).body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        source = "\n".join(source.splitlines()[body[0].end_lineno:])
    return source.lstrip("\n")


def gallery(examples: list[Example]) -> str:
    """The gallery page: one card per example, with its first figure."""
    out = ["# Examples", "",
           "Short scripts on small data, each a few seconds on a laptop CPU. They run every "
           "time this site is built: the figures and the printed output on their pages are "
           "what the code shown there produced. Download a script from its page and run it "
           "with `python NAME.py`; it writes its figures into the current folder.", "",
           '<div class="grid cards" markdown>', ""]
    for ex in examples:
        first = ex.figures[0][0]
        summary = ex.description.split("\n\n")[0].replace("\n", " ")
        out += [f"-   **[{ex.title}]({ex.name}.md)**", "",
                f"    [![{ex.title}]({_figure_uri(ex, first)})]({ex.name}.md)", "",
                f"    {summary}", ""]
    out += ["</div>", ""]
    return "\n".join(out)


def _figure_uri(example: Example, name: str) -> str:
    return f"images/{example.name}-{name}"


def on_config(config):
    """Put one nav entry per example under the nav's "Examples" entry."""
    examples = scripts(Path(config["docs_dir"]))
    entries = [{"Gallery": f"{FOLDER}/index.md"}]
    entries += [{ex.title: f"{FOLDER}/{ex.name}.md"} for ex in examples]
    for item in config["nav"] or []:
        if isinstance(item, dict) and item.get("Examples") == f"{FOLDER}/index.md":
            item["Examples"] = entries
    return config


def on_files(files: Files, config) -> Files:
    examples = scripts(Path(config["docs_dir"]))
    root = Path(config["config_file_path"]).parent
    for ex in examples:
        run_cached(ex, root / "src" / "aekit", root / CACHE)
        files.append(File.generated(config, f"{FOLDER}/{ex.name}.md", content=page(ex)))
        for name, data in ex.figures:
            files.append(File.generated(config, f"{FOLDER}/{_figure_uri(ex, name)}",
                                        content=data))
    files.append(File.generated(config, f"{FOLDER}/index.md", content=gallery(examples)))
    return files
