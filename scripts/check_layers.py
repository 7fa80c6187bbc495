#!/usr/bin/env python3
"""The layer check: which folder of src/ may #include which.

Scans every .hpp/.cpp under src/ (not *_test.cpp: tests may reach across layers), reads its
#include lines and builds the graph of folders (the first path component under src/; files
directly in src/, such as src/main.cpp, belong to the pseudo-folder `main`). Fails (exit 1) on

  - a dependency cycle between folders;
  - kit    -> any other folder               (kit knows no product);
  - core   -> any other folder but kit       (the shared vocabulary includes no domain);
  - storage -> http or auth;
  - auth   -> storage or a domain folder;
  - a domain folder -> storage               (it declares a repository; storage implements it);
  - http   -> any folder but kit and core    (http knows no domain);
  - a domain or adapter folder -> sqlite3, libpq, hiredis, Beast, Asio's sockets/TLS or curl
    headers;
  - an adapter -> any folder but those it adapts (stripe -> only payments, http, core and kit);
  - any folder but app and main -> an adapter (only the composition root builds one);
  - a quoted include naming a file that exists neither under src/ nor under the repository root.

Adapters implement an interface a domain declares over an outside service (stripe: the payments
domain's PaymentProvider over Stripe's REST API, through http/'s curl client); they are layers,
not domains, and only the composition root builds them.

Domain folders are all folders but kit, core, http, auth, storage, the adapters, app and main
(app and main, the composition root, may include anything). A folder including itself is fine.

Each violation is printed as `file:line: folder -> folder: reason`.

Usage: python3 scripts/check_layers.py [--root DIR]   (DIR: the repository root, default the
parent of this script's folder; the tree checked is DIR/src)
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path

MAIN = "main"
# Each adapter, and the folders it may include.
ADAPTERS = {"stripe": ("core", "kit", "http", "payments")}
LAYERS = {"kit", "core", "http", "auth", "storage", "app", MAIN} | ADAPTERS.keys()
SOURCE_SUFFIXES = (".hpp", ".cpp")
TEST_SUFFIX = "_test.cpp"

# System headers that mean sockets, TLS, HTTP or a database driver: no domain folder may use
# them (domain rules are plain functions over the repositories; Asio's awaitable and the like
# are fine).
FORBIDDEN_IN_DOMAIN = [
    (re.compile(r"^sqlite3(ext)?\.h$"), "SQLite"),
    (re.compile(r"^libpq-fe\.h$|^libpq/|^postgresql/|^pqxx/"), "libpq"),
    (re.compile(r"^boost/beast(\.hpp$|/)"), "Beast"),
    (re.compile(r"^boost/asio\.hpp$"), "Asio's sockets (the all-in-one header)"),
    (re.compile(r"^boost/asio/(ip/|ssl(\.hpp$|/)|local/|.*socket)"), "Asio's sockets/TLS"),
    (re.compile(r"^curl/"), "curl"),
    (re.compile(r"^hiredis/"), "hiredis"),
]

INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*(?:"([^"\n]*)"|<([^>\n]*)>|(.*))', re.MULTILINE)
CONDITIONAL_START = re.compile(r"^[ \t]*#[ \t]*if(?:def|ndef)?\b")
IF_ZERO = re.compile(r"^[ \t]*#[ \t]*if[ \t]+0[ \t]*$")
ELSE_OR_ELIF = re.compile(r"^[ \t]*#[ \t]*(?:else|elif)\b")
ENDIF = re.compile(r"^[ \t]*#[ \t]*endif\b")


@dataclass(frozen=True)
class Include:
    file: str  # relative to the root, e.g. src/plans/routes.cpp
    line: int
    text: str  # as written, e.g. "http/route.hpp" or <boost/beast/http.hpp>


@dataclass
class Violation:
    file: str
    line: int
    source: str
    target: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.source} -> {self.target}: {self.reason}"


@dataclass
class Graph:
    files: int = 0
    folders: set[str] = field(default_factory=set)
    # (from folder, to folder) -> the include lines that make the arrow
    arrows: dict[tuple[str, str], list[Include]] = field(default_factory=lambda: defaultdict(list))


def blank_comments_and_literals(text: str) -> str:
    """The text with comments and string/character literals replaced by spaces (newlines kept,
    so line numbers stay), so that an #include in a comment or a raw string does not count.
    The operands of #include lines themselves are kept (they look like string literals)."""
    out: list[str] = []
    i, n = 0, len(text)
    line_start = True  # only blanks since the last newline
    directive_include = False  # inside the operand of an #include line
    while i < n:
        c = text[i]
        if c == "\n":
            out.append(c)
            line_start, directive_include = True, False
            i += 1
            continue
        if line_start and c == "#":
            m = INCLUDE.match(text, text.rfind("\n", 0, i) + 1)
            directive_include = m is not None
        if not c.isspace():
            line_start = False
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:end]))
            i = end
            continue
        if directive_include:
            out.append(c)
            i += 1
            continue
        if c == '"':
            # R"delim( ... )delim", with an optional u8/u/U/L prefix before the R.
            raw = re.search(r"(?:^|[^A-Za-z0-9_])(?:u8|u|U|L)?R$", text[max(0, i - 4):i])
            if raw:
                open_paren = text.find("(", i)
                delimiter = text[i + 1:open_paren] if open_paren >= 0 else ""
                close = text.find(")" + delimiter + '"', open_paren + 1) if open_paren >= 0 else -1
                end = n if close < 0 else close + len(delimiter) + 2
            else:
                end = i + 1
                while end < n and text[end] not in '"\n':
                    end += 2 if text[end] == "\\" else 1
                end = min(end + 1, n)
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:end]))
            i = end
            continue
        if c == "'":
            # A digit separator (1'000'000) or a character literal?
            start = i
            while start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_.'"):
                start -= 1
            if start < i and text[start].isdigit():
                out.append(c)
                i += 1
                continue
            end = i + 1
            while end < n and text[end] not in "'\n":
                end += 2 if text[end] == "\\" else 1
            end = min(end + 1, n)
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:end]))
            i = end
            continue
        out.append(c)
        i += 1
    return "".join(out)


def includes_of(path: Path, relative: str) -> tuple[list[Include], list[Violation]]:
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = blank_comments_and_literals(text).split("\n")
    found: list[Include] = []
    problems: list[Violation] = []
    # Lines inside `#if 0` (up to its #else/#elif/#endif) are skipped; other conditionals count.
    stack: list[bool] = []  # per open conditional: is this branch dead because of `#if 0`?
    for number, line in enumerate(lines, start=1):
        if IF_ZERO.match(line):
            stack.append(True)
            continue
        if CONDITIONAL_START.match(line):
            stack.append(False)
            continue
        if ELSE_OR_ELIF.match(line):
            if stack:
                stack[-1] = False
            continue
        if ENDIF.match(line):
            if stack:
                stack.pop()
            continue
        if any(stack):
            continue
        m = INCLUDE.match(line)
        if not m:
            continue
        quoted, angled, other = m.groups()
        if quoted is not None:
            found.append(Include(relative, number, f'"{quoted}"'))
        elif angled is not None:
            found.append(Include(relative, number, f"<{angled}>"))
        else:
            problems.append(Violation(relative, number, folder_of(relative), "?",
                                      f"cannot check a computed #include {other.strip()}"))
    return found, problems


def folder_of(relative: str) -> str:
    """src/plans/routes.cpp -> plans; src/main.cpp -> main."""
    parts = Path(relative).parts
    return parts[1] if len(parts) > 2 else MAIN


def is_domain(folder: str) -> bool:
    return folder not in LAYERS


def resolve(root: Path, including: str, name: str, angled: bool) -> str | None:
    """Where a compiler with -Isrc -I. would find the file (relative to the root), or None if it
    is not a file of the repository. Angled includes are looked up under src/ only (a project
    header included with <...> still makes an arrow)."""
    src = root / "src"
    candidates = [] if angled else [(root / including).parent / name]
    candidates.append(src / name)
    if not angled:
        candidates.append(root / name)
    for candidate in candidates:
        if candidate.is_file():
            resolved = Path(os.path.normpath(candidate))
            try:
                return resolved.relative_to(root).as_posix()
            except ValueError:  # ../ out of the repository
                return None
    return None


def rules(source: str, target: str) -> str | None:
    """Why the arrow source -> target (between two folders of src/) is not allowed, or None."""
    if source == target or source in ("app", MAIN):
        return None
    if source == "kit":
        return "kit knows no product folder"
    if source == "core" and target != "kit":
        return "core (the shared vocabulary) includes only kit"
    if source in ADAPTERS and target not in ADAPTERS[source]:
        return f"{source} (an adapter) includes only " + ", ".join(ADAPTERS[source])
    if target in ADAPTERS:
        return f"only app and main (the composition root) include the adapter {target}"
    if source == "storage" and target in ("http", "auth"):
        return f"storage knows no {target}"
    if source == "auth" and target == "storage":
        return "auth knows no storage"
    if source == "auth" and is_domain(target):
        return "auth knows no domain folder"
    if source == "http" and target not in ("kit", "core"):
        return "http includes only kit and core (http knows no domain)"
    if is_domain(source) and target == "storage":
        return "a domain declares its repository and uses core/db.hpp, never storage/"
    return None


def forbidden_system_header(header: str) -> str | None:
    for pattern, what in FORBIDDEN_IN_DOMAIN:
        if pattern.search(header):
            return what
    return None


def scan(root: Path) -> tuple[Graph, list[Violation]]:
    src = root / "src"
    graph = Graph()
    violations: list[Violation] = []
    files = sorted(p for p in src.rglob("*")
                   if p.is_file() and p.name.endswith(SOURCE_SUFFIXES)
                   and not p.name.endswith(TEST_SUFFIX))
    for path in files:
        relative = path.relative_to(root).as_posix()
        source = folder_of(relative)
        graph.files += 1
        graph.folders.add(source)
        found, problems = includes_of(path, relative)
        violations.extend(problems)
        for include in found:
            angled = include.text.startswith("<")
            name = include.text[1:-1]
            target_file = resolve(root, relative, name, angled)
            if target_file is None:
                if not angled:
                    violations.append(Violation(
                        relative, include.line, source, include.text,
                        "names no file under src/ or the repository root"))
                elif (is_domain(source) or source in ADAPTERS) and (
                        what := forbidden_system_header(name)):
                    violations.append(Violation(
                        relative, include.line, source, include.text,
                        f"{'adapter' if source in ADAPTERS else 'domain'} folders use no {what} "
                        "(sockets, TLS, HTTP clients and database drivers stay in http/ and "
                        "storage/)"))
                continue
            if not target_file.startswith("src/"):
                continue  # e.g. tests/support/...: not a folder of src/, no arrow
            target = folder_of(target_file)
            graph.folders.add(target)
            if target != source:
                graph.arrows[(source, target)].append(include)
    for (source, target), lines in sorted(graph.arrows.items()):
        reason = rules(source, target)
        if reason:
            violations.extend(Violation(i.file, i.line, source, target, reason) for i in lines)
    violations.sort(key=lambda v: (v.file, v.line))
    violations.extend(cycles(graph))
    return graph, violations


def strongly_connected(nodes: list[str], edges: dict[str, list[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []

    def visit(v: str) -> None:  # a dozen folders: recursion is fine
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            components.append(sorted(component))

    for v in nodes:
        if v not in index:
            visit(v)
    return components


def cycles(graph: Graph) -> list[Violation]:
    """For each set of folders that depend on each other, cycles that together use every arrow
    between them (every one of those arrows is part of a cycle, and any may be the one to cut).
    Each cycle is named in order, with every include line that makes each of its arrows."""
    edges: dict[str, list[str]] = defaultdict(list)
    for source, target in sorted(graph.arrows):
        edges[source].append(target)
    result: list[Violation] = []
    for component in strongly_connected(sorted(graph.folders), edges):
        if len(component) < 2:
            continue
        members = set(component)
        inside = [(s, t) for s in component for t in edges[s] if t in members]
        covered: set[tuple[str, str]] = set()
        for source, target in inside:
            if (source, target) in covered:
                continue
            path = shortest_path(target, source, edges, members)  # back from target to source
            cycle = [source] + path  # source -> target -> ... -> source
            start = cycle.index(min(cycle[:-1]))  # name it from its smallest folder
            cycle = cycle[start:-1] + cycle[:start] + [cycle[start]]
            named = " -> ".join(cycle)
            for s, t in zip(cycle, cycle[1:]):
                lines = graph.arrows[(s, t)]
                if (s, t) in covered:  # listed in full with an earlier cycle
                    lines = lines[:1]
                covered.add((s, t))
                for include in lines:
                    result.append(Violation(include.file, include.line, s, t,
                                            f"part of the cycle {named} (include {include.text})"))
    return result


def shortest_path(start: str, goal: str, edges: dict[str, list[str]], within: set[str]) -> list[str]:
    previous: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        v = queue.popleft()
        if v == goal:
            break
        for w in edges.get(v, []):
            if w in within and w not in previous:
                previous[w] = v
                queue.append(w)
    path = [goal]
    while previous[path[-1]] is not None:
        path.append(previous[path[-1]])  # type: ignore[arg-type]
    return list(reversed(path))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="the repository root (default: the parent of scripts/)")
    args = parser.parse_args()
    root = args.root.resolve()
    if not (root / "src").is_dir():
        print(f"check_layers: no src/ under {root}", file=sys.stderr)
        return 2

    graph, violations = scan(root)

    targets: dict[str, list[str]] = defaultdict(list)
    for source, target in sorted(graph.arrows):
        targets[source].append(target)
    folders = sorted(graph.folders)
    print("layers:  " + ", ".join(f for f in folders if not is_domain(f)))
    print("domains: " + ", ".join(f for f in folders if is_domain(f)))
    print("arrows:")
    for folder in folders:
        print(f"  {folder} -> " + (", ".join(targets[folder]) or "(nothing)"))

    if violations:
        seen: set[str] = set()
        unique = [v for v in violations if not (str(v) in seen or seen.add(str(v)))]
        print()
        for violation in unique:
            print(violation)
        print(f"layers: FAILED ({len(unique)} violations; {graph.files} files, "
              f"{len(graph.arrows)} arrows)")
        return 1
    print(f"layers: OK ({graph.files} files, {len(graph.arrows)} arrows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
