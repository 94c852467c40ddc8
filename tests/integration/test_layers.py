"""scripts/check-layers.py (DESIGN.md §2 include rules, issue 11): the real tree passes, and
a copy of it with one forbidden include or library link fails, naming the file, the line,
the include and the rule. No broker is started."""

import importlib.util
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SCRIPT = os.path.join(ROOT, "scripts", "check-layers.py")


def load_script():
    spec = importlib.util.spec_from_file_location("check_layers", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LAYERS = load_script()


def check(root):
    done = subprocess.run([sys.executable, SCRIPT, "--root", str(root)], capture_output=True,
                          text=True, timeout=60)
    return done.returncode, done.stdout + done.stderr


@pytest.fixture
def tree(tmp_path):
    """A copy of the real src/ to break."""
    shutil.copytree(os.path.join(ROOT, "src"), tmp_path / "src")
    return tmp_path


def append(tree, rel, line):
    """Appends `line` to tree/rel; returns its line number."""
    path = tree / rel
    text = path.read_text() if path.exists() else ""
    if text and not text.endswith("\n"):
        text += "\n"
    text += line + "\n"
    path.write_text(text)
    return text.count("\n")


def test_the_real_tree_follows_the_rules():
    rc, out = check(ROOT)
    assert rc == 0, out


def test_the_copy_passes_before_it_is_broken(tree):
    rc, out = check(tree)
    assert rc == 0, out


def test_a_layer_that_depends_on_nothing_may_not_include_another(tree):
    line = append(tree, "src/mqtt/topic.hpp", '#include "broker/message.hpp"')
    rc, out = check(tree)
    assert rc == 1, out
    assert ('src/mqtt/topic.hpp:%d: #include "broker/message.hpp"' % line) in out, out
    assert "mqtt depends on nothing of ours" in out, out


@pytest.mark.parametrize("rel,include,rule", [
    ("src/store/schema.hpp", "runtime/shard.hpp", "store → broker"),
    ("src/runtime/socket.cpp", "config/config.hpp", "runtime → broker, wire"),
    ("src/tools/payload.cpp", "store/store.hpp", "tools → mqtt, runtime"),
    ("src/broker/session.hpp", "runtime/event_loop.hpp", "broker → mqtt"),
    ("src/config/units.cpp", "mqtt/topic.hpp", "config depends on nothing of ours"),
])
def test_an_include_outside_the_closure_fails(tree, rel, include, rule):
    line = append(tree, rel, '#include "%s"' % include)
    rc, out = check(tree)
    assert rc == 1, out
    assert ('%s:%d: #include "%s"' % (rel, line, include)) in out, out
    assert rule in out, out


def test_an_angle_include_of_a_layer_is_checked_too(tree):
    line = append(tree, "src/mqtt/types.cpp", "#include <store/store.hpp>")
    rc, out = check(tree)
    assert rc == 1, out
    assert "src/mqtt/types.cpp:%d: #include <store/store.hpp>" % line in out, out


@pytest.mark.parametrize("rel,include", [
    ("src/store/schema.hpp", "mqtt/topic.hpp"),        # store → broker → mqtt
    ("src/runtime/socket.cpp", "mqtt/types.hpp"),      # runtime → broker → mqtt
    ("src/tools/payload.cpp", "broker/message.hpp"),   # tools → runtime → broker
    ("src/app/main.cpp", "store/store.hpp"),           # app → everything
])
def test_dependencies_are_transitive(tree, rel, include):
    append(tree, rel, '#include "%s"' % include)
    rc, out = check(tree)
    assert rc == 0, out


def test_a_quoted_include_that_names_no_layer_fails(tree):
    line = append(tree, "src/tools/payload.cpp", '#include "payload.hpp"')
    rc, out = check(tree)
    assert rc == 1, out
    assert 'src/tools/payload.cpp:%d: #include "payload.hpp": not "<layer>/<file>"' % line in out


def test_a_folder_without_a_rule_fails(tree):
    (tree / "src" / "web").mkdir()
    append(tree, "src/web/page.cpp", '#include "mqtt/topic.hpp"')
    rc, out = check(tree)
    assert rc == 1, out
    assert "src/web: a folder of src/: not in the layer table" in out, out


def test_a_forbidden_library_link_fails(tree):
    cmake = tree / "src" / "mqtt" / "CMakeLists.txt"
    text = cmake.read_text()
    assert "harbor_library(harbor_mqtt " in text
    cmake.write_text(text.replace("harbor_library(harbor_mqtt ",
                                  "harbor_library(harbor_mqtt harbor_store "))
    rc, out = check(tree)
    assert rc == 1, out
    assert "src/mqtt/CMakeLists.txt:" in out and "links harbor_store" in out, out
    assert "mqtt depends on nothing of ours" in out, out


# The exception mechanism, with an exception of our own (the real list is empty since the
# broker got its own settings in issue 11): it covers its one file and layer, nothing else.
EXCEPTION = ("src/broker/context.hpp", "config", "a test's exception", "no issue")


def run_checker(tree):
    return "\n".join(LAYERS.Checker(str(tree)).run())


def test_a_known_exception_covers_that_file_and_layer_only(tree, monkeypatch):
    monkeypatch.setattr(LAYERS, "KNOWN_EXCEPTIONS", [EXCEPTION])
    rel, layer = EXCEPTION[0], EXCEPTION[1]
    excepted_line = append(tree, rel, '#include "%s/config.hpp"' % layer)
    # Another forbidden layer in the excepted file.
    line = append(tree, rel, '#include "store/x.hpp"')
    # The excepted layer in a sibling file of the same layer.
    sibling = os.path.join(os.path.dirname(rel), "layer_check_sibling.cpp")
    sibling_line = append(tree, sibling, '#include "%s/x.hpp"' % layer)
    out = run_checker(tree)
    assert '%s:%d: #include "store/x.hpp"' % (rel, line) in out, out
    assert '%s:%d: #include "%s/x.hpp"' % (sibling, sibling_line, layer) in out, out
    assert "%s:%d:" % (rel, excepted_line) not in out, out
    assert "matches nothing" not in out, out


def test_a_known_exception_that_matches_nothing_fails(tree, monkeypatch):
    monkeypatch.setattr(LAYERS, "KNOWN_EXCEPTIONS", [EXCEPTION])
    out = run_checker(tree)
    assert EXCEPTION[0] in out and "matches nothing" in out, out


def test_broker_runtime_and_store_may_not_use_config(tree):
    """Issue 11: broker::Settings and the store's settings are built in app."""
    for rel in ("src/broker/context.hpp", "src/runtime/shard.cpp", "src/store/store.cpp"):
        line = append(tree, rel, '#include "config/config.hpp"')
        rc, out = check(tree)
        assert rc == 1, out
        assert '%s:%d: #include "config/config.hpp"' % (rel, line) in out, out
        path = tree / rel
        path.write_text("".join(path.read_text().splitlines(True)[:-1]))
    cmake = tree / "src" / "broker" / "CMakeLists.txt"
    cmake.write_text(cmake.read_text().replace("harbor_library(harbor_broker ",
                                               "harbor_library(harbor_broker harbor_config "))
    rc, out = check(tree)
    assert rc == 1, out
    assert "src/broker/CMakeLists.txt:" in out and "links harbor_config" in out, out


def test_a_tree_without_src_is_an_error(tmp_path):
    rc, out = check(tmp_path)
    assert rc == 2, out
    assert "no src/ folder" in out, out
