"""Man pages and examples (cli.md §11): generated from the live command tree, committed, complete.

- The committed `man/` and `completions/` are what `scripts/gen-docs` writes today, byte for
  byte: a new option, command or example without regenerating fails here.
- Every page renders with groff without a warning and has every section; its OPTIONS name
  every option of its command (the global ones and, for server commands, every configuration
  flag), with default and environment variable.
- Every command has examples; each is a real invocation of it, whose options exist; `--help`
  shows the same examples.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from resonate import __version__
from resonate.cli import manpage
from resonate.cli.errors import ExitCode
from resonate.cli.examples import EXAMPLES, examples_for
from tests.cli.cli_runner import RunCli

REPOSITORY = Path(__file__).resolve().parents[2]
GENERATED_FOLDERS = ("man", "completions")
SECTIONS = (
    "NAME",
    "SYNOPSIS",
    "DESCRIPTION",
    "OPTIONS",
    "EXIT STATUS",
    "ENVIRONMENT",
    "EXAMPLES",
    "SEE ALSO",
)
# Rich draws `--help` 80 columns wide with a margin; longer example lines would wrap there.
EXAMPLE_WIDTH = 76

ROOT = manpage.root_node()
NODES = list(manpage.walk(ROOT))
NODE_IDS = [" ".join(node.path[1:]) or "resonate" for node in NODES]


def require_tool(name: str) -> str:
    """The tool's path; a missing tool skips the test locally and fails it in CI."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian: apt-get install -y groff-base)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def sections(page: str) -> dict[str, str]:
    """The roff source of each `.SH` section, by title."""
    found: dict[str, str] = {}
    for chunk in re.split(r"^\.SH ", page, flags=re.MULTILINE)[1:]:
        title, _, body = chunk.partition("\n")
        found[title.strip('"')] = body
    return found


def entries(section: str) -> dict[str, str]:
    """The `.TP` entries of a section by each of their names (`-S`, `--server`, `ID`)."""
    found: dict[str, str] = {}
    for entry in section.split(".TP\n")[1:]:
        tag = entry.partition("\n")[0]
        for name in re.findall(r"\\f[BI](.*?)\\fR", tag):
            found.setdefault(name, entry)
    return found


def generated_files(directory: Path) -> dict[str, bytes]:
    return {
        f"{folder}/{path.name}": path.read_bytes()
        for folder in GENERATED_FOLDERS
        for path in sorted((directory / folder).glob("*"))
        if path.is_file()
    }


# --- the committed files are the generator's --------------------------------------------------


def test_committed_man_pages_and_completions_are_what_gen_docs_writes(tmp_path: Path) -> None:
    completed = subprocess.run(
        [str(REPOSITORY / "scripts" / "gen-docs"), str(tmp_path)],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    fresh, committed = generated_files(tmp_path), generated_files(REPOSITORY)
    assert sorted(fresh) == sorted(committed), "run scripts/gen-docs and commit man/, completions/"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert stale == [], f"out of date (run scripts/gen-docs): {stale}"


def test_a_stale_page_is_removed_when_regenerating(tmp_path: Path) -> None:
    (tmp_path / "man").mkdir()
    (tmp_path / "man" / "resonate-gone.1").write_text(".TH GONE 1\n")
    manpage.write_docs(tmp_path)
    assert not (tmp_path / "man" / "resonate-gone.1").exists()
    assert (tmp_path / "man" / "resonate.1").exists()


def test_every_command_and_group_has_a_page() -> None:
    names = set(manpage.man_pages(ROOT))
    assert {"resonate.1", "resonate-serve.1", "resonate-promises.1"} <= names
    assert "resonate-promises-get.1" in names
    assert len(names) == len(NODES)


def test_pages_are_deterministic_ascii_without_a_date() -> None:
    first, second = manpage.man_pages(ROOT), manpage.man_pages(ROOT)
    assert first == second
    for name, page in first.items():
        assert page.isascii(), name
        title_line = next(line for line in page.splitlines() if line.startswith(".TH "))
        assert f'"1" "" "resonate {__version__}"' in title_line, title_line


# --- every page -------------------------------------------------------------------------------


@pytest.mark.parametrize("node", NODES, ids=NODE_IDS)
def test_page_renders_with_groff_without_warnings(node: manpage.CommandNode) -> None:
    groff = require_tool("groff")
    page = manpage.render_page(node, ROOT)
    rendered = subprocess.run(
        [groff, "-man", "-Tutf8", "-ww"], input=page, capture_output=True, text=True, timeout=30
    )
    assert rendered.returncode == 0
    assert rendered.stderr == ""
    text = re.sub(r".\x08", "", rendered.stdout)  # overstrike bold and underline
    for title in SECTIONS:
        assert f"\n{title}\n" in text, title


@pytest.mark.parametrize("node", NODES, ids=NODE_IDS)
def test_page_has_every_section_in_order(node: manpage.CommandNode) -> None:
    found = list(sections(manpage.render_page(node, ROOT)))
    assert [title for title in found if title in SECTIONS] == list(SECTIONS)


@pytest.mark.parametrize("node", NODES, ids=NODE_IDS)
def test_options_name_every_option_with_metavar_default_and_environment(
    node: manpage.CommandNode,
) -> None:
    options = entries(sections(manpage.render_page(node, ROOT))["OPTIONS"])
    params = [param for params in manpage.option_panels(node).values() for param in params]
    assert params, "every command has at least --help"
    for param in params:
        for name in param.opts:
            assert manpage.roff(name) in options, f"{name} missing from OPTIONS"
        entry = options[manpage.roff(param.opts[0])]
        doc = manpage.option_doc(param)
        if doc.metavar:
            assert f"\\fI{manpage.roff(doc.metavar)}\\fR" in entry.partition("\n")[0]
        if doc.default is not None:
            assert f"Default: \\fB{manpage.roff(doc.default)}\\fR" in entry
        for variable in doc.environment:
            assert f"Environment: \\fB{manpage.roff(variable)}\\fR" in entry


@pytest.mark.parametrize("path", [("serve",), ("dev",), ("config", "show")])
def test_server_command_pages_list_every_configuration_flag(path: tuple[str, ...]) -> None:
    from resonate.server.config import OPTIONS

    node = manpage.find(ROOT, path)
    assert node is not None
    page = manpage.render_page(node, ROOT)
    options, environment = sections(page)["OPTIONS"], sections(page)["ENVIRONMENT"]
    assert "\\fB\\-c\\fR, \\fB\\-\\-config\\fR \\fIPATH\\fR" in options
    for option in OPTIONS:
        assert f"\\fB{manpage.roff(option.flag)}\\fR" in options, option.flag
        assert f"\\fB{manpage.roff(option.env)}\\fR" in environment, option.env
    assert "\\fB\\-\\-log\\-level\\fR \\fIdebug|info|warning|error\\fR" in options
    assert "\\fB\\-\\-metrics\\-enable\\fR, \\fB\\-\\-no\\-metrics\\-enable\\fR" in options


def test_config_show_page_lists_its_own_options() -> None:
    node = manpage.find(ROOT, ["config", "show"])
    assert node is not None
    options = entries(sections(manpage.render_page(node, ROOT))["OPTIONS"])
    assert {"\\-\\-sources", "\\-o", "\\-\\-output"} <= set(options)


def test_migrate_pages_list_the_store_flags_only() -> None:
    node = manpage.find(ROOT, ["migrate", "up"])
    assert node is not None
    options = sections(manpage.render_page(node, ROOT))["OPTIONS"]
    assert "\\-\\-aio\\-store\\-postgres\\-url" in options
    assert "\\-\\-config" in options
    assert "\\-\\-api\\-http\\-addr" not in options


def test_exit_status_names_every_exit_code_the_cli_defines() -> None:
    codes = {int(code) for code in ExitCode}
    assert codes <= set(manpage.EXIT_STATUS)
    page = manpage.render_page(ROOT, ROOT)
    for code in codes:
        assert f".TP\n\\fB{code}\\fR\n" in sections(page)["EXIT STATUS"]


def test_global_options_show_their_environment_variables() -> None:
    node = manpage.find(ROOT, ["promises", "get"])
    assert node is not None
    environment = sections(manpage.render_page(node, ROOT))["ENVIRONMENT"]
    for variable in ("RESONATE_SERVER", "RESONATE_TOKEN", "RESONATE_USERNAME", "NO_COLOR"):
        assert f"\\fB{variable}\\fR" in environment


def test_see_also_links_parents_and_children() -> None:
    group = manpage.find(ROOT, ["promises"])
    leaf = manpage.find(ROOT, ["promises", "get"])
    assert group is not None and leaf is not None
    assert (
        ".BR resonate\\-promises\\-get (1)"
        in sections(manpage.render_page(group, ROOT))["SEE ALSO"]
    )
    see_also = sections(manpage.render_page(leaf, ROOT))["SEE ALSO"]
    assert see_also == ".BR resonate (1),\n.BR resonate\\-promises (1)\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("--state", "\\-\\-state"),
        ("a\\b", "a\\eb"),
        ("'*'", "\\(aq*\\(aq"),
        ("…", "\\[u2026]"),
        ("🟢", "\\[u1F7E2]"),
    ],
)
def test_roff_escapes(text: str, expected: str) -> None:
    assert manpage.roff(text) == expected


# --- examples ---------------------------------------------------------------------------------


def example_commands(path: str) -> list[str]:
    """The example lines of `path` with their ` \\` continuations joined."""
    joined = "\n".join(examples_for(path)).replace(" \\\n", " ")
    return joined.splitlines()


def value_taking_names(node: manpage.CommandNode) -> dict[str, bool]:
    """Every option name of the command, and whether it takes a value."""
    names: dict[str, bool] = {}
    for params in manpage.option_panels(node).values():
        for param in params:
            for name in (*param.opts, *getattr(param, "secondary_opts", ())):
                names[name] = manpage.option_doc(param).metavar is not None
    if manpage.takes_server_configuration(node):
        for doc in manpage.server_configuration_docs(node)[1]:
            for name in doc.names:
                names[name] = doc.metavar is not None
    return names


def invoked_node(command_line: str) -> manpage.CommandNode:
    """Follow `resonate …` through the tree, checking each option on the way exists."""
    words = shlex.split(command_line)
    words = words[: words.index(">")] if ">" in words else words
    assert words[0] == "resonate"
    node, index = ROOT, 1
    while index < len(words):
        word = words[index]
        if word.startswith("-") and word != "-":
            name = word.partition("=")[0]
            options = value_taking_names(node)
            assert name in options, f"{' '.join(node.path)} has no option {name}"
            index += 2 if options[name] and "=" not in word else 1
            continue
        if node.is_group:
            child = manpage.find(node, [word])
            assert child is not None, f"{' '.join(node.path)} has no command {word!r}"
            node = child
        index += 1
    return node


@pytest.mark.parametrize("node", NODES, ids=NODE_IDS)
def test_every_command_has_examples_that_invoke_it_with_real_options(
    node: manpage.CommandNode,
) -> None:
    path = " ".join(node.path)
    commands = example_commands(path)
    assert commands, f"no example for {path!r} in resonate/cli/examples.py"
    for command_line in commands:
        assert invoked_node(command_line).path[: len(node.path)] == node.path, command_line


def test_every_example_names_a_command_and_fits_the_help_width() -> None:
    paths = {" ".join(node.path) for node in NODES}
    assert set(EXAMPLES) <= paths, set(EXAMPLES) - paths
    for lines in EXAMPLES.values():
        for line in lines:
            assert len(line) <= EXAMPLE_WIDTH, line


@pytest.mark.parametrize("node", NODES, ids=NODE_IDS)
def test_help_shows_the_examples_of_the_man_page(
    node: manpage.CommandNode, run_cli: RunCli
) -> None:
    result = run_cli(*node.path[1:], "--help")
    assert result.exit_code == 0, result.stderr
    help_lines = [line.strip(" │") for line in result.stdout.splitlines()]
    for line in examples_for(" ".join(node.path)):
        assert line.strip() in help_lines
    page = sections(manpage.render_page(node, ROOT))["EXAMPLES"]
    for line in examples_for(" ".join(node.path)):
        assert manpage.roff(line) in page


# --- resonate man -----------------------------------------------------------------------------


def test_man_command_prints_the_page_when_not_on_a_terminal(run_cli: RunCli) -> None:
    result = run_cli("man", "promises", "get")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (REPOSITORY / "man" / "resonate-promises-get.1").read_text()
    assert run_cli("man").stdout == (REPOSITORY / "man" / "resonate.1").read_text()


def test_man_command_rejects_an_unknown_command(run_cli: RunCli) -> None:
    result = run_cli("man", "promises", "nope")
    assert result.exit_code == 2
    assert "nope" in result.stderr
    assert result.stdout == ""
