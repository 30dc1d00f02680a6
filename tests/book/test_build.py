"""The Jupyter Book builds warning-free and reads offline: pages, figures, math, widgets, citations.

The book is built once per test session (the ``built_book`` fixture) from a staged copy in a temp
folder, never in the repository.

Contract with ``notebooks/conftest.py`` (which runs first in a full ``pytest`` run): for every
chapter notebook ``notebooks/NN-slug/name.md`` it executes, it saves an executed copy as
``_build/executed/notebooks/NN-slug/name.ipynb`` whose notebook metadata holds
``{"genlib": {"source_sha256": <sha256 of the .md file's bytes>}}`` and the widget state. The
fixture stages, for every notebook in ``_toc.yml``:

- the executed copy, at the source's path with ``.ipynb`` for ``.md``, when it exists and its
  ``source_sha256`` matches the source as it is now: the book renders its outputs without running
  it (``execute_notebooks: off``);
- otherwise the ``.md`` source itself, which the build executes (``force``, quick mode:
  ``GENLIB_QUICK=1`` unless the caller set it), so ``pytest tests/book`` alone still works and
  every chapter still executes once.

The toc's entries have no extension, so they resolve to whichever of the two was staged.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXECUTED_DIR = ROOT / "_build" / "executed"
BUILD_TIMEOUT_S = 2 * 60 * 60  # executing every chapter in quick mode stays well under this

# Widget modules that the vendored @jupyter-widgets/html-manager bundles: only these render
# without a network. Anything else would be fetched from a CDN.
BUNDLED_WIDGET_MODULES = {
    "@jupyter-widgets/base",
    "@jupyter-widgets/controls",
    "@jupyter-widgets/output",
}
# The scripts _config.yml's nb_ipywidgets_js adds to pages with widgets, in load order.
WIDGET_SCRIPTS = (
    "_static/requirejs/require.js",
    "_static/jupyter-widgets/offline-config.js",
    "_static/jupyter-widgets/embed-amd.js",
)
MATHJAX_SCRIPT = "_static/mathjax/tex-chtml.js"
# Hosts the default configuration of Sphinx and myst-nb loads MathJax, RequireJS and the widgets
# manager from.
CDN_PATTERN = re.compile(
    r"cdn\.jsdelivr\.net|cdnjs\.cloudflare\.com|unpkg\.com/(@jupyter-widgets|requirejs|mathjax)|"
    r"polyfill\.io|https?://[^\"'\s]*(mathjax|require(\.min)?\.js|html-manager|embed-amd)",
    re.IGNORECASE,
)
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # No name resolves: anything the page fetches from the network fails, so what renders is
    # what the book ships.
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--virtual-time-budget=8000", "--window-size=1280,2000",
)


# -------------------------------------------------------------------------------------------------
# Staging


def toc_entries(toc_path: Path) -> list[str]:
    """Every ``file`` of a Jupyter Book 1 ``_toc.yml``, root first, in reading order."""
    toc = yaml.safe_load(toc_path.read_text(encoding="utf-8"))
    found: list[str] = [toc["root"]]

    def walk(node) -> None:
        if isinstance(node, dict):
            if "file" in node:
                found.append(node["file"])
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key, []) or []:
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk({k: v for k, v in toc.items() if k != "root"})
    return found


def source_of(root: Path, entry: str) -> Path:
    """The file a toc entry (no extension) names: ``entry.md`` or ``entry.ipynb``."""
    for suffix in (".md", ".ipynb"):
        path = root / f"{entry}{suffix}"
        if path.is_file():
            return path
    raise FileNotFoundError(f"_toc.yml lists {entry!r} but neither {entry}.md nor .ipynb exists")


def is_notebook(path: Path) -> bool:
    """An ``.ipynb``, or a jupytext MyST ``.md`` (front matter naming jupytext and a kernel)."""
    if path.suffix == ".ipynb":
        return True
    if path.suffix != ".md":
        return False
    head = path.read_text(encoding="utf-8")[:2000]
    return head.startswith("---") and "jupytext:" in head and "kernelspec:" in head


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fresh_executed_copy(root: Path, executed_dir: Path, source: Path) -> Path | None:
    """The executed copy of ``source`` if it exists and was made from the source as it is now."""
    if source.suffix != ".md":
        return None
    copy = executed_dir / source.relative_to(root).with_suffix(".ipynb")
    if not copy.is_file():
        return None
    try:
        meta = json.loads(copy.read_text(encoding="utf-8"))["metadata"]
        recorded = meta["genlib"]["source_sha256"]
    except (ValueError, KeyError, TypeError):
        return None
    return copy if recorded == sha256_of(source) else None


@dataclass(frozen=True)
class Staged:
    """A copy of the book ready to build.

    Attributes:
        path: the staged book's root (holds ``_config.yml``).
        rendered: toc entries of notebooks staged as executed copies (not run by the build).
        executed: toc entries of notebooks staged as sources (run by the build).
    """

    path: Path
    rendered: tuple[str, ...]
    executed: tuple[str, ...]


_IGNORE = shutil.ignore_patterns(
    "*.ipynb", ".ipynb_checkpoints", "__pycache__", "_build", "runs", ".pytest_cache"
)


def stage_book(root: Path, executed_dir: Path, dest: Path) -> Staged:
    """Copy the book into ``dest``, swapping in fresh executed copies of its notebooks.

    Copies ``_config.yml``, ``_toc.yml``, ``book/`` and the folder of every notebook in the toc
    (with its other files, minus any ``.ipynb``), then replaces each notebook source that has a
    fresh executed copy by that copy. The staged ``_config.yml`` turns execution off when nothing
    is left to execute, and otherwise executes only the staged sources.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(root / name, dest / name)
    shutil.copytree(root / "book", dest / "book", ignore=_IGNORE, dirs_exist_ok=True)

    rendered: list[str] = []
    executed: list[str] = []
    for entry in toc_entries(root / "_toc.yml"):
        source = source_of(root, entry)
        rel = source.relative_to(root)
        if not (dest / rel.parent).is_dir():
            shutil.copytree(root / rel.parent, dest / rel.parent, ignore=_IGNORE)
        if not is_notebook(source):
            shutil.copy2(source, dest / rel)
            continue
        copy = fresh_executed_copy(root, executed_dir, source)
        (dest / rel).unlink(missing_ok=True)
        if copy is not None:
            shutil.copy2(copy, dest / rel.with_suffix(".ipynb"))
            rendered.append(entry)
        else:
            shutil.copy2(source, dest / rel)
            executed.append(entry)

    config = yaml.safe_load((dest / "_config.yml").read_text(encoding="utf-8"))
    execute = config.setdefault("execute", {})
    if executed:
        execute["execute_notebooks"] = "force"
        # The staged .ipynb files are executed copies: render them as they are.
        execute["exclude_patterns"] = ["*.ipynb"]
    else:
        execute["execute_notebooks"] = "off"
    (dest / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return Staged(path=dest, rendered=tuple(rendered), executed=tuple(executed))


# -------------------------------------------------------------------------------------------------
# The build


def jupyter_book_command() -> Path | None:
    """The ``jupyter-book`` script of the environment running the tests."""
    candidate = Path(sys.executable).parent / "jupyter-book"
    if candidate.is_file():
        return candidate
    found = shutil.which("jupyter-book")
    return Path(found) if found else None


@dataclass(frozen=True)
class Built:
    staged: Staged
    html: Path
    returncode: int
    log: str

    def log_tail(self, lines: int = 150) -> str:
        return "\n".join(self.log.splitlines()[-lines:])


@pytest.fixture(scope="session")
def built_book(tmp_path_factory: pytest.TempPathFactory) -> Built:
    command = jupyter_book_command()
    if command is None:
        pytest.skip("jupyter-book is not installed: install the [book] extra to build the book")
    staged = stage_book(ROOT, EXECUTED_DIR, tmp_path_factory.mktemp("book"))
    env = dict(os.environ)
    if staged.executed:
        env.setdefault("GENLIB_QUICK", "1")
    proc = subprocess.run(
        [str(command), "build", str(staged.path), "-W", "-n", "--keep-going"],
        cwd=staged.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    log = (
        f"rendered from executed copies: {list(staged.rendered)}\n"
        f"executed by the build: {list(staged.executed)}\n"
        f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    )
    log = re.sub(r"\x1b\[[0-9;]*m", "", log)  # Sphinx colours its output
    (staged.path / "build.log").write_text(log, encoding="utf-8")
    return Built(staged, staged.path / "_build" / "html", proc.returncode, log)


@pytest.fixture(scope="session")
def book(built_book: Built) -> Built:
    """The built book; tests that inspect it fail at once (with the log) if the build failed."""
    if built_book.returncode != 0:
        pytest.fail(
            f"jupyter-book build exited {built_book.returncode} (full log in "
            f"test_book_builds_without_warnings); log tail:\n{built_book.log_tail(40)}",
            pytrace=False,
        )
    return built_book


# -------------------------------------------------------------------------------------------------
# HTML helpers


def pages(html_dir: Path) -> list[Path]:
    return sorted(p for p in html_dir.rglob("*.html") if "_static" not in p.parts)


def attr_values(text: str, tag: str, attr: str) -> list[str]:
    pattern = re.compile(rf"<{tag}\b[^>]*?\b{attr}\s*=\s*\"([^\"]*)\"", re.IGNORECASE)
    return [html.unescape(v) for v in pattern.findall(text)]


def local_target(page: Path, url: str) -> Path | None:
    """The file a relative URL on ``page`` points to (None for absolute or data URLs)."""
    parts = urlsplit(url)
    if parts.scheme or url.startswith("//") or not parts.path:
        return None
    return (page.parent / unquote(parts.path)).resolve()


def toc_pages(book: Built) -> dict[str, Path]:
    return {e: book.html / f"{e}.html" for e in toc_entries(book.staged.path / "_toc.yml")}


def notebook_entries(book: Built) -> list[str]:
    return list(book.staged.rendered) + list(book.staged.executed)


def widget_pages(book: Built) -> list[Path]:
    return [p for p in pages(book.html) if WIDGET_VIEW in p.read_text(encoding="utf-8")]


def resource_urls(text: str) -> list[str]:
    """URLs a page loads by itself: script sources and stylesheet, preload and icon links."""
    urls = attr_values(text, "script", "src")
    for tag in re.findall(r"<link\b[^>]*>", text, re.IGNORECASE):
        rel = re.search(r"\brel=\"([^\"]*)\"", tag)
        href = re.search(r"\bhref=\"([^\"]*)\"", tag)
        if rel and href and set(rel.group(1).split()) & {"stylesheet", "preload", "icon"}:
            urls.append(html.unescape(href.group(1)))
    return urls


def math_count(text: str) -> int:
    """Formulas on a built page (Sphinx marks each with this class for MathJax)."""
    return text.count('class="math notranslate nohighlight"')


# -------------------------------------------------------------------------------------------------
# Staging contract (no build)


def _write_chapter(root: Path, text: str) -> Path:
    source = root / "notebooks" / "01-x" / "01-a.md"
    source.parent.mkdir(parents=True)
    source.write_text(text, encoding="utf-8")
    (source.parent / "figure.svg").write_text("<svg/>", encoding="utf-8")
    (source.parent / "01-a.ipynb").write_text("{}", encoding="utf-8")  # a stray paired copy
    (root / "book").mkdir()
    (root / "book" / "intro.md").write_text("# Intro\n", encoding="utf-8")
    (root / "_config.yml").write_text("title: t\nexecute:\n  execute_notebooks: force\n")
    (root / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nchapters:\n  - file: notebooks/01-x/01-a\n"
    )
    return source


def _write_executed(executed_dir: Path, source_sha256: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["genlib"] = {"source_sha256": source_sha256}
    copy = executed_dir / "notebooks" / "01-x" / "01-a.ipynb"
    copy.parent.mkdir(parents=True)
    nbformat.write(nb, copy)
    return copy


CHAPTER_MD = "---\njupytext:\n  text_representation: {}\nkernelspec:\n  name: python3\n---\n# A\n"


def test_stage_uses_a_fresh_executed_copy_and_turns_execution_off(tmp_path):
    root, executed_dir = tmp_path / "repo", tmp_path / "repo" / "_build" / "executed"
    source = _write_chapter(root, CHAPTER_MD)
    copy = _write_executed(executed_dir, sha256_of(source))

    staged = stage_book(root, executed_dir, tmp_path / "staged")

    assert staged.rendered == ("notebooks/01-x/01-a",) and staged.executed == ()
    chapter = staged.path / "notebooks" / "01-x"
    assert (chapter / "01-a.ipynb").read_bytes() == copy.read_bytes()
    assert not (chapter / "01-a.md").exists()  # one file per docname, or Sphinx warns
    assert (chapter / "figure.svg").is_file()  # the chapter's other files travel with it
    config = yaml.safe_load((staged.path / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "off"
    assert (staged.path / "book" / "intro.md").is_file()


def test_stage_falls_back_to_the_source_when_the_copy_is_stale_or_missing(tmp_path):
    root, executed_dir = tmp_path / "repo", tmp_path / "repo" / "_build" / "executed"
    source = _write_chapter(root, CHAPTER_MD)
    _write_executed(executed_dir, sha256_of(source))
    source.write_text(CHAPTER_MD + "edited\n", encoding="utf-8")  # now the copy is stale

    staged = stage_book(root, executed_dir, tmp_path / "stale")

    assert staged.rendered == () and staged.executed == ("notebooks/01-x/01-a",)
    chapter = staged.path / "notebooks" / "01-x"
    assert (chapter / "01-a.md").read_text() == CHAPTER_MD + "edited\n"
    assert not (chapter / "01-a.ipynb").exists()  # the stray paired .ipynb is not copied
    config = yaml.safe_load((staged.path / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "force"
    assert config["execute"]["exclude_patterns"] == ["*.ipynb"]

    shutil.rmtree(executed_dir)
    assert stage_book(root, executed_dir, tmp_path / "missing").executed == (
        "notebooks/01-x/01-a",
    )


def test_toc_entries_walks_parts_chapters_and_sections(tmp_path):
    toc = tmp_path / "_toc.yml"
    toc.write_text(
        "format: jb-book\nroot: a\nparts:\n  - caption: P\n    chapters:\n      - file: b\n"
        "        sections:\n          - file: c\n      - file: d\n  - caption: Q\n"
        "    chapters:\n      - file: e\n"
    )
    assert toc_entries(toc) == ["a", "b", "c", "d", "e"]


def test_every_chapter_notebook_is_in_the_toc():
    """only_build_toc_files skips unlisted files silently: every section must be in the toc."""
    listed = set(toc_entries(ROOT / "_toc.yml"))
    skip = {".ipynb_checkpoints", "_build", "runs"}
    notebooks = [
        p for p in sorted((ROOT / "notebooks").rglob("*.md"))
        if not skip & set(p.parts) and is_notebook(p)
    ]
    missing = [
        p.relative_to(ROOT).as_posix() for p in notebooks
        if p.relative_to(ROOT).with_suffix("").as_posix() not in listed
    ]
    assert not missing, f"chapter notebooks missing from _toc.yml: {missing}"


# -------------------------------------------------------------------------------------------------
# The built book (slow: one build of the whole book per session, about 10 s when every chapter
# has an executed copy; minutes per chapter that has to be executed)

slow = pytest.mark.slow


@slow
def test_book_builds_without_warnings(built_book: Built):
    assert built_book.returncode == 0, (
        f"jupyter-book build -W -n --keep-going exited {built_book.returncode}; log tail:\n"
        f"{built_book.log_tail()}"
    )


@slow
def test_every_toc_entry_has_a_page(book: Built):
    missing = [entry for entry, page in toc_pages(book).items() if not page.is_file()]
    assert not missing, f"no HTML page for toc entries {missing}"
    assert (book.html / "index.html").is_file()


@slow
def test_every_image_on_every_page_exists(book: Built):
    broken = []
    for page in pages(book.html):
        for src in attr_values(page.read_text(encoding="utf-8"), "img", "src"):
            target = local_target(page, src)
            if target is not None and not target.is_file():
                broken.append(f"{page.relative_to(book.html)}: {src}")
    assert not broken, "images that point to no file:\n" + "\n".join(broken)


@slow
def test_chapter_pages_show_every_figure_their_notebook_made(book: Built):
    """Each image output of an executed notebook appears on its page as an <img> or inline SVG."""
    for entry in notebook_entries(book):
        executed = book.staged.path / "_build" / "jupyter_execute" / f"{entry}.ipynb"
        assert executed.is_file(), f"myst-nb wrote no executed notebook for {entry}"
        nb = nbformat.read(executed, as_version=4)
        made = sum(
            1
            for cell in nb.cells
            if cell.cell_type == "code"
            for out in cell.get("outputs", [])
            if any(m.startswith("image/") for m in out.get("data", {}))
        )
        page = book.html / f"{entry}.html"
        shown = [
            src for src in attr_values(page.read_text(encoding="utf-8"), "img", "src")
            if (target := local_target(page, src)) is not None
            and target.parent == (book.html / "_images").resolve() and target.is_file()
        ]
        assert len(shown) >= made, (
            f"{entry}: the notebook made {made} figures, the page shows {len(shown)}"
        )


@slow
def test_no_page_loads_scripts_or_styles_from_a_cdn(book: Built):
    offenders = []
    for page in pages(book.html):
        text = page.read_text(encoding="utf-8")
        for url in resource_urls(text):
            if re.match(r"(?i)([a-z][a-z0-9+.-]*:)?//", url):
                offenders.append(f"{page.relative_to(book.html)}: {url}")
        for match in CDN_PATTERN.finditer(text):
            start = max(match.start() - 60, 0)
            offenders.append(f"{page.relative_to(book.html)}: ...{text[start:match.end() + 40]}")
    assert not offenders, "pages that would load from the network:\n" + "\n".join(offenders)


@slow
def test_mathjax_is_bundled_and_used(book: Built):
    mathjax = book.html / MATHJAX_SCRIPT
    assert mathjax.is_file() and mathjax.stat().st_size > 100_000, f"{mathjax} missing"
    assert (book.html / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").is_dir()
    math_pages = [p for p in pages(book.html) if math_count(p.read_text(encoding="utf-8"))]
    assert math_pages, "no page holds math: the notation page should"
    for page in math_pages:
        srcs = [local_target(page, s) for s in attr_values(page.read_text(), "script", "src")]
        assert mathjax.resolve() in srcs, f"{page.relative_to(book.html)} does not load {mathjax}"


@slow
def test_widget_scripts_are_bundled_with_their_licenses(book: Built):
    for rel in WIDGET_SCRIPTS:
        assert (book.html / rel).is_file(), f"{rel} is not in the built book"
    for folder in ("requirejs", "jupyter-widgets"):
        assert (book.html / "_static" / folder / "LICENSE").is_file()
    # the Font Awesome files the manager's CSS asks for sit beside embed-amd.js
    embed = (book.html / WIDGET_SCRIPTS[-1]).read_text(encoding="utf-8")
    fonts = set(re.findall(r"[0-9a-f]{20}\.woff2", embed))
    assert fonts and all((book.html / "_static" / "jupyter-widgets" / f).is_file() for f in fonts)


@slow
def test_widget_pages_load_each_local_script_once_in_order(book: Built):
    found = widget_pages(book)
    if not found:
        pytest.skip("no page of the book holds a widget")
    for page in found:
        text = page.read_text(encoding="utf-8")
        srcs = [local_target(page, s) for s in attr_values(text, "script", "src")]
        wanted = [(book.html / rel).resolve() for rel in WIDGET_SCRIPTS]
        counts = [srcs.count(w) for w in wanted]
        assert counts == [1, 1, 1], f"{page.relative_to(book.html)} loads {WIDGET_SCRIPTS} {counts}"
        positions = [srcs.index(w) for w in wanted]
        assert positions == sorted(positions), f"{page.relative_to(book.html)}: wrong order"


@slow
def test_widgets_carry_their_state_and_need_only_bundled_modules(book: Built):
    found = widget_pages(book)
    if not found:
        pytest.skip("no page of the book holds a widget")
    for page in found:
        text = page.read_text(encoding="utf-8")
        states = re.findall(
            rf"<script type=\"{re.escape(WIDGET_STATE)}\">(.*?)</script>", text, re.DOTALL
        )
        assert states, (
            f"{page.relative_to(book.html)} shows widgets but holds no widget state: the executed "
            "notebook must keep metadata.widgets, or the widgets render as nothing"
        )
        for raw in states:
            for model_id, model in json.loads(raw)["state"].items():
                module = model["model_module"]
                assert module in BUNDLED_WIDGET_MODULES, (
                    f"{page.relative_to(book.html)}: widget {model_id} needs {module!r}, which the "
                    f"bundled manager lacks ({sorted(BUNDLED_WIDGET_MODULES)}); it would only "
                    "render online"
                )


@slow
def test_bibliography_lists_every_cited_entry(book: Built):
    from pybtex.database import parse_file

    bib = parse_file(str(ROOT / "book" / "references.bib"))
    cited: set[str] = set()
    for entry in toc_entries(book.staged.path / "_toc.yml"):
        source = source_of(ROOT, entry)
        if source.suffix == ".md":
            for keys in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", source.read_text("utf-8")):
                cited.update(k.strip() for k in keys.split(","))
    assert cited, "no page cites anything: the intro should"
    unknown = sorted(cited - set(bib.entries))
    assert not unknown, f"cited keys missing from references.bib: {unknown}"

    page = (book.html / "book" / "bibliography.html").read_text(encoding="utf-8")
    listed = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", page))).lower()
    for key in sorted(cited):
        raw_title = bib.entries[key].fields["title"]
        title = re.sub(r"\s+", " ", raw_title.replace("{", "").replace("}", ""))
        assert title.lower() in listed, f"{key} ({title!r}) is cited but not in the bibliography"
    assert page.count('role="doc-biblioentry"') == len(bib.entries)


# -------------------------------------------------------------------------------------------------
# In a browser, offline (Chromium headless; the CI installs it)


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def dump_dom(page: Path) -> str:
    exe = chromium()
    if exe is None:
        pytest.skip("chromium is not on PATH (apt-get install -y chromium) to render pages")
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=120,
        )
    assert proc.returncode == 0, f"chromium failed on {page}:\n{proc.stderr[-3000:]}"
    return proc.stdout


@slow
def test_math_is_typeset_offline_in_a_browser(book: Built):
    page = book.html / "book" / "notation.html"
    expected = math_count(page.read_text(encoding="utf-8"))
    dom = dump_dom(page)
    typeset = dom.count("<mjx-container")
    assert typeset >= expected > 0, f"{typeset} of {expected} formulas typeset on {page.name}"
    assert "<mjx-merror" not in dom, "MathJax reported a TeX error on the notation page"


@slow
def test_widgets_render_offline_in_a_browser(book: Built):
    found = widget_pages(book)
    if not found:
        pytest.skip("no page of the book holds a widget")
    for page in found:
        views = page.read_text(encoding="utf-8").count(f'type="{WIDGET_VIEW}"')
        dom = dump_dom(page)
        rendered = dom.count('class="widget-subarea"')
        assert rendered == views, (
            f"{page.relative_to(book.html)}: {rendered} of {views} widgets rendered offline"
        )
        assert "jupyter-widgets" in dom
        # the manager's styles ask for icon fonts: they must resolve to the vendored files
        fonts = set(re.findall(r"url\((file://[^)]+?\.woff2?)\)", dom))
        assert fonts, f"{page.relative_to(book.html)}: the widget styles were not applied"
        missing = sorted(u for u in fonts if not Path(unquote(urlsplit(u).path)).is_file())
        assert not missing, f"{page.relative_to(book.html)}: widget fonts not found: {missing}"
