#!/usr/bin/python3
"""Checks the include rules between the layers of src/ (DESIGN.md §2, "Check them in CI").

Usage: /usr/bin/python3 scripts/check-layers.py [--root DIR]
Exit status: 0 when every rule holds, 1 when one is broken (each broken rule is printed as
"file:line: what: rule"), 2 when the tree cannot be read. Needs nothing beyond python3.

What is checked, for every folder src/<layer>/ (one layer, one CMake library):
  - every `#include "a/b.hpp"` (and `#include <a/b.hpp>` whose first part names a layer) in
    src/<layer>/**: the included layer `a` must be <layer> itself or one it may depend on;
    a quoted include must be "layer/file" (headers are included from src/, never relative);
  - the harbor_<layer> libraries named in src/<layer>/CMakeLists.txt (harbor_library(...)
    and target_link_libraries(...)) against the same table;
  - every folder under src/ is in the table, so a new layer must be given its rule here.
tests/ and bench/ are exempt: a test may reach into any layer it tests.

The rule table (DESIGN.md §2) is read TRANSITIVELY: a layer may use what the layers it
depends on may use, because their headers expose those layers' types in their contracts
(store → broker → mqtt: store/op_applier.hpp sees mqtt types through broker/ports.hpp, and
may name them). So store may include mqtt; runtime may include mqtt; bridge may include
broker and wire; http may include runtime, broker, wire and mqtt. Nothing reaches config
except app: configuration is read in app and handed to a layer as that layer's own settings
(store::StoreSettings, for example).

tools (the client tools, not in DESIGN.md's list) → mqtt, runtime: they speak the protocol
through mqtt and drive sockets with runtime's event loop (src/tools includes
runtime/event_loop.hpp and runtime/socket.hpp), and nothing else of ours.

Known exceptions are listed in KNOWN_EXCEPTIONS, each with the issue that removes it. An
entry that no longer matches anything is an error too, so the list only ever shrinks.
"""

import argparse
import os
import re
import sys

# layer → the layers it depends on directly (DESIGN.md §2; tools: see above).
DEPENDS_ON = {
    "mqtt": [],
    "wire": [],
    "config": [],
    "broker": ["mqtt"],
    "store": ["broker"],
    "runtime": ["broker", "wire"],
    "bridge": ["mqtt", "runtime"],
    "http": ["runtime"],
    "tools": ["mqtt", "runtime"],
    "app": ["mqtt", "wire", "config", "broker", "store", "runtime", "bridge", "http", "tools"],
}

# (file relative to the root, the layer it may use against the table, why, the issue that
# removes it). An entry covers that one file's includes of that one layer (for a
# CMakeLists.txt: its links to that layer's library), nothing else.
KNOWN_EXCEPTIONS: list = []

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
LINK_CALL = re.compile(r"\b(harbor_library|target_link_libraries)\s*\(([^)]*)\)", re.S)
HARBOR_LIB = re.compile(r"^harbor_([a-z0-9_]+)$")
SOURCE_EXT = (".hpp", ".cpp", ".h", ".cc", ".ipp")


def allowed_layers():
    """layer → every layer it may use: itself plus the transitive closure of DEPENDS_ON."""
    closure = {}
    for layer in DEPENDS_ON:
        seen = {layer}
        todo = list(DEPENDS_ON[layer])
        while todo:
            dep = todo.pop()
            if dep not in seen:
                seen.add(dep)
                todo.extend(DEPENDS_ON[dep])
        closure[layer] = seen
    return closure


def rule_text(layer, closure):
    direct = DEPENDS_ON[layer]
    if not direct:
        return "%s depends on nothing of ours" % layer
    text = "%s → %s" % (layer, ", ".join(direct))
    others = sorted(closure[layer] - {layer})
    if others != sorted(direct):
        text += " (so it may use %s)" % ", ".join(others)
    return text


class Checker:
    def __init__(self, root):
        self.root = root
        self.closure = allowed_layers()
        self.problems = []
        # (file, layer) pairs an exception was needed for, to find stale entries.
        self.used = set()
        self.exceptions = {(f, layer) for f, layer, _, _ in KNOWN_EXCEPTIONS}

    def report(self, where, what, rule):
        self.problems.append("%s: %s: %s" % (where, what, rule))

    def check_use(self, where, rel, layer, used_layer, what):
        if used_layer in self.closure[layer]:
            return
        if (rel, used_layer) in self.exceptions:
            self.used.add((rel, used_layer))
            return
        self.report(where, what, "broken rule: " + rule_text(layer, self.closure))

    def check_source(self, rel, layer):
        with open(os.path.join(self.root, rel), encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
        for number, line in enumerate(lines, 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            quote, target = m.group(1), m.group(2).strip()
            parts = target.split("/")
            where = "%s:%d" % (rel, number)
            what = "#include %s" % (quote + target + ('"' if quote == '"' else ">"))
            if parts[0] in DEPENDS_ON and len(parts) > 1:
                self.check_use(where, rel, layer, parts[0], what)
            elif quote == '"':
                self.report(where, what, "not \"<layer>/<file>\" with <layer> one of "
                            + ", ".join(sorted(DEPENDS_ON)) + " (includes are from src/)")

    def check_cmake(self, rel, layer):
        with open(os.path.join(self.root, rel), encoding="utf-8", errors="replace") as f:
            text = f.read()
        # Comments out, keeping the line numbers.
        text = re.sub(r"#[^\n]*", "", text)
        for m in LINK_CALL.finditer(text):
            words = m.group(2).split()
            if m.group(1) == "harbor_library":
                words = words[1:]  # the library's own name
            for word in words:
                lib = HARBOR_LIB.match(word)
                if not lib:
                    continue
                used_layer = lib.group(1)
                number = text.count("\n", 0, m.start()) + 1
                where = "%s:%d" % (rel, number)
                if used_layer not in DEPENDS_ON:
                    self.report(where, "links %s" % word, "no layer %s in the table" % used_layer)
                    continue
                self.check_use(where, rel, layer, used_layer, "links %s" % word)

    def run(self):
        src = os.path.join(self.root, "src")
        if not os.path.isdir(src):
            raise OSError("%s: no src/ folder" % src)
        for layer in sorted(os.listdir(src)):
            if not os.path.isdir(os.path.join(src, layer)):
                continue
            if layer not in DEPENDS_ON:
                self.report("src/" + layer, "a folder of src/",
                            "not in the layer table: give it a rule in DEPENDS_ON")
                continue
            for folder, dirs, files in os.walk(os.path.join(src, layer)):
                dirs.sort()
                for name in sorted(files):
                    rel = os.path.relpath(os.path.join(folder, name), self.root)
                    if name.endswith(SOURCE_EXT):
                        self.check_source(rel, layer)
                    elif name == "CMakeLists.txt":
                        self.check_cmake(rel, layer)
        for f, layer, why, issue in KNOWN_EXCEPTIONS:
            if (f, layer) not in self.used:
                self.report(f, "known exception (%s, %s) matches nothing" % (why, issue),
                            "delete its KNOWN_EXCEPTIONS entry in scripts/check-layers.py")
        return self.problems


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.path.dirname(here),
                        help="the source tree to check (default: this script's repository)")
    args = parser.parse_args()
    try:
        problems = Checker(os.path.abspath(args.root)).run()
    except OSError as e:
        print("check-layers: %s" % e, file=sys.stderr)
        return 2
    for p in problems:
        print(p)
    if problems:
        print("check-layers: %d broken layer rule(s); the table is in scripts/check-layers.py "
              "(DESIGN.md §2)" % len(problems), file=sys.stderr)
        return 1
    print("check-layers: every include and library link in src/ follows the layer rules "
          "(%d known exception(s))" % len(KNOWN_EXCEPTIONS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
