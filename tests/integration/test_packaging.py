"""Packaging: the systemd unit, the service config, `cmake --install` and the CPack .deb.

The unit is checked with systemd-analyze (verify, and the offline security score) against a
copy whose ExecStart/ExecReload name the built binary and the repository's service config, so
that verify's "is the command executable" check means something. The service config is the
shipped etc/harbormq.conf with three keys changed; the broker must start from it. Install and
package are made from the build directory that holds $HARBORMQ_BIN (no rebuild).
"""

import os
import re
import shutil
import signal
import subprocess
import types

import pytest

from broker_harness import HARBORMQ_BIN
from helpers import HOST, PahoClient, free_port, read_log, unique_id, wait_for_listener

pytestmark = pytest.mark.harbormq_only

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
BUILD_DIR = os.path.dirname(os.path.abspath(HARBORMQ_BIN))
UNIT = os.path.join(REPO, "packaging", "harbormq.service")
SERVICE_CONF = os.path.join(REPO, "packaging", "harbormq.conf")
SHIPPED_CONF = os.path.join(REPO, "etc", "harbormq.conf")
SYSTEMD_ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"

# The keys in which the service config departs from etc/harbormq.conf, and their values.
SERVICE_OVERRIDES = {
    "sqlite.mounted_file_path": "/var/lib/harbormq",
    "system.pid_file": "/run/harbormq/harbormq.pid",
    "listeners.tcp.bind": "127.0.0.1:1883",
}


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def unit_service_section(text):
    """[Service] of a unit file as {key: [values in order]} (keys may repeat)."""
    out = {}
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]":
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def flatten_conf(text):
    """The `key = value` lines of a HarborMQ config as {"section.key": value}. Enough for the
    shipped files' shape (blocks of scalar keys, one per line); not a HOCON reader."""
    keys = {}
    stack = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip() if not raw.strip().startswith("#") else ""
        if not line:
            continue
        if line.endswith("{"):
            stack.append(line[:-1].strip())
        elif line == "}":
            stack.pop()
        else:
            key, sep, value = line.partition("=")
            assert sep, "unexpected line in config: %r" % raw
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            keys[".".join(stack + [key.strip()])] = value
    assert not stack, "unbalanced braces"
    return keys


def project_version():
    m = re.search(r"project\(harbormq VERSION ([0-9.]+)", read(os.path.join(REPO, "CMakeLists.txt")))
    assert m, "no project(harbormq VERSION ...) in CMakeLists.txt"
    return m.group(1)


def local_unit_copy(tmp_path):
    """The unit with the built binary and the repository's config in place of the installed
    paths; everything else unchanged."""
    text = read(UNIT)
    assert "/usr/bin/harbormq " in text and "/etc/harbormq/harbormq.conf" in text
    text = text.replace("/usr/bin/harbormq ", os.path.abspath(HARBORMQ_BIN) + " ")
    text = text.replace("/etc/harbormq/harbormq.conf", SERVICE_CONF)
    path = tmp_path / "harbormq.service"
    path.write_text(text)
    return path


# --- the unit ----------------------------------------------------------------------------------

def test_unit_declares_the_service_contract():
    svc = unit_service_section(read(UNIT))
    assert svc["Type"] == ["notify"]
    assert svc["ExecStart"] == ["/usr/bin/harbormq start --conf /etc/harbormq/harbormq.conf"]
    assert svc["ExecReload"] == ["/usr/bin/harbormq reload --conf /etc/harbormq/harbormq.conf"]
    assert svc["User"] == ["harbormq"]
    assert svc["Restart"] == ["on-failure"]
    assert int(svc["LimitNOFILE"][0]) >= 65536
    assert svc["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX"]
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices",
                "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
                "ProtectControlGroups", "MemoryDenyWriteExecute"):
        assert svc.get(key) == ["yes"], key
    assert svc["ProtectSystem"] == ["strict"]
    # The directories systemd creates are the ones the service config writes to.
    conf = flatten_conf(read(SERVICE_CONF))
    assert conf["sqlite.mounted_file_path"] == "/var/lib/" + svc["StateDirectory"][0]
    assert os.path.dirname(conf["system.pid_file"]) == "/run/" + svc["RuntimeDirectory"][0]


def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    unit = local_unit_copy(tmp_path)
    r = subprocess.run([SYSTEMD_ANALYZE, "verify", "--man=no", str(unit)],
                       capture_output=True, text=True, timeout=60)
    # verify exits 0 on unknown keys or bad values but names the file in a warning.
    complaints = [l for l in (r.stdout + r.stderr).splitlines() if "harbormq.service" in l]
    assert r.returncode == 0 and not complaints, r.stdout + r.stderr


def test_systemd_analyze_verify_catches_a_broken_copy(tmp_path):
    """The check above can fail: a misspelt key and a missing binary are both reported."""
    unit = local_unit_copy(tmp_path)
    broken = tmp_path / "broken" / "harbormq.service"
    broken.parent.mkdir()
    broken.write_text(unit.read_text().replace("ProtectHome=", "ProtectHmoe=")
                      .replace(os.path.abspath(HARBORMQ_BIN), str(tmp_path / "no-such-binary")))
    r = subprocess.run([SYSTEMD_ANALYZE, "verify", "--man=no", str(broken)],
                       capture_output=True, text=True, timeout=60)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "ProtectHmoe" in out, out


def test_unit_hardening_exposure_is_low(tmp_path):
    unit = local_unit_copy(tmp_path)
    # Scores are printed as 0.0-10.0; --threshold takes them x10. 2.0 and below is "OK".
    r = subprocess.run([SYSTEMD_ANALYZE, "security", "--offline=yes", "--threshold=20", str(unit)],
                       capture_output=True, text=True, timeout=60)
    score = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
    assert r.returncode == 0 and score, r.stdout[-2000:] + r.stderr
    assert float(score.group(1)) <= 2.0


# --- the service config ------------------------------------------------------------------------

def test_service_config_is_the_shipped_one_with_service_paths():
    """A change to etc/harbormq.conf must be made to packaging/harbormq.conf too."""
    shipped = flatten_conf(read(SHIPPED_CONF))
    service = flatten_conf(read(SERVICE_CONF))
    assert set(service) == set(shipped), (
        "packaging/harbormq.conf must have the keys of etc/harbormq.conf; only in etc: %s, "
        "only in packaging: %s" % (sorted(set(shipped) - set(service)),
                                    sorted(set(service) - set(shipped))))
    for key, value in SERVICE_OVERRIDES.items():
        assert service[key] == value, key
    different = {k for k in shipped if shipped[k] != service[k]} - set(SERVICE_OVERRIDES)
    assert not different, "packaging/harbormq.conf departs from etc/harbormq.conf in %s" % (
        ["%s: %s vs %s" % (k, service[k], shipped[k]) for k in sorted(different)])


def test_service_config_starts_a_broker_that_accepts_mqtt(tmp_path):
    port = free_port()
    data_dir = tmp_path / "data"
    pid_file = tmp_path / "harbormq.pid"
    log_path = tmp_path / "broker.log"
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [HARBORMQ_BIN, "start", "--conf", SERVICE_CONF,
             "--set", "listeners.tcp.bind=%s:%d" % (HOST, port),
             "--set", "sqlite.mounted_file_path=%s" % data_dir,
             "--set", "system.pid_file=%s" % pid_file],
            stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for_listener(proc, HOST, port, 15, lambda: read_log(log_path), proc.kill)
        broker = types.SimpleNamespace(host=HOST, port=port)
        sub = PahoClient(broker, version=5, client_id=unique_id("pkg-sub"))
        pub = PahoClient(broker, version=4, client_id=unique_id("pkg-pub"))
        try:
            sub.subscribe("pkg/t", qos=1)
            pub.publish("pkg/t", b"hello", qos=1)
            got = sub.expect(1)
            assert got[0].payload == b"hello"
        finally:
            pub.close()
            sub.close()
        assert int(pid_file.read_text().split()[0]) == proc.pid
        assert (data_dir / "harbormq.db").exists(), "store not in sqlite.mounted_file_path"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
    assert rc == 0, read_log(log_path)


# --- cmake --install ---------------------------------------------------------------------------

def cmake_install(destdir, prefix):
    env = dict(os.environ, DESTDIR=str(destdir))
    r = subprocess.run(["cmake", "--install", BUILD_DIR, "--prefix", prefix],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_cmake_install_lays_out_the_files_under_usr(tmp_path):
    cmake_install(tmp_path, "/usr")
    binary = tmp_path / "usr" / "bin" / "harbormq"
    assert binary.is_file() and os.access(binary, os.X_OK)
    assert (tmp_path / "etc" / "harbormq" / "harbormq.conf").read_text() == read(SERVICE_CONF)
    assert (tmp_path / "usr" / "lib" / "systemd" / "system" / "harbormq.service").read_text() == read(UNIT)
    docs = tmp_path / "usr" / "share" / "doc" / "harbormq"
    assert (docs / "README.md").is_file() and (docs / "configuration.md").is_file()
    installed = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()}
    outside = {p for p in installed if not p.startswith(("usr/", "etc/harbormq/"))}
    assert not outside, outside


def test_cmake_install_elsewhere_rewrites_the_unit_and_keeps_an_edited_config(tmp_path):
    prefix = "/opt/harbormq"
    root = tmp_path / "opt" / "harbormq"
    cmake_install(tmp_path, prefix)
    conf = root / "etc" / "harbormq" / "harbormq.conf"
    assert conf.read_text() == read(SERVICE_CONF)
    svc = unit_service_section((root / "lib" / "systemd" / "system" / "harbormq.service").read_text())
    installed_conf = prefix + "/etc/harbormq/harbormq.conf"
    assert svc["ExecStart"] == [prefix + "/bin/harbormq start --conf " + installed_conf]
    assert svc["ExecReload"] == [prefix + "/bin/harbormq reload --conf " + installed_conf]
    # A second install leaves the admin's edit alone and puts the new file beside it.
    conf.write_text(read(SERVICE_CONF) + "\n# edited by the admin\n")
    out = cmake_install(tmp_path, prefix)
    assert conf.read_text().endswith("# edited by the admin\n")
    assert (conf.parent / "harbormq.conf.new").read_text() == read(SERVICE_CONF)
    assert "Keeping the existing" in out


# --- the Debian package ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("deb")
    r = subprocess.run(["cpack", "-G", "DEB", "--config", os.path.join(BUILD_DIR, "CPackConfig.cmake"),
                        "-B", str(out_dir)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()
    path = out_dir / ("harbormq_%s_%s.deb" % (project_version(), arch))
    assert path.is_file(), "expected %s; cpack made %s" % (path.name, os.listdir(out_dir))
    return path


def dpkg_deb(*args):
    return subprocess.run(["dpkg-deb"] + list(args), capture_output=True, text=True,
                          check=True, timeout=60).stdout


def test_deb_control_fields_and_dependencies(deb):
    assert dpkg_deb("-f", str(deb), "Package").strip() == "harbormq"
    assert dpkg_deb("-f", str(deb), "Version").strip() == project_version()
    depends = [d.strip().split(" ")[0] for d in dpkg_deb("-f", str(deb), "Depends").split(",")]
    # From dpkg-shlibdeps (the binary's libraries), plus adduser for postinst.
    for pkg in ("libc6", "libstdc++6", "libsqlite3-0", "libsystemd0", "adduser"):
        assert pkg in depends, "Depends lacks %s: %s" % (pkg, depends)


def test_deb_contents_and_conffile(deb, tmp_path):
    listing = dpkg_deb("-c", str(deb))
    for path in ("./usr/bin/harbormq", "./usr/lib/systemd/system/harbormq.service",
                 "./etc/harbormq/harbormq.conf", "./usr/share/doc/harbormq/README.md"):
        assert re.search(r"\s%s$" % re.escape(path), listing, re.M), path + " missing:\n" + listing
    assert dpkg_deb("-I", str(deb), "conffiles").split() == ["/etc/harbormq/harbormq.conf"]
    dpkg_deb("-x", str(deb), str(tmp_path))
    assert (tmp_path / "etc/harbormq/harbormq.conf").read_text() == read(SERVICE_CONF)
    assert (tmp_path / "usr/lib/systemd/system/harbormq.service").read_text() == read(UNIT)
    # The packaged (stripped) binary runs.
    r = subprocess.run([str(tmp_path / "usr/bin/harbormq"), "--help"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0 and "start" in r.stdout, r.stdout + r.stderr


def test_deb_maintainer_scripts_create_the_user_and_start_nothing(deb):
    postinst = dpkg_deb("-I", str(deb), "postinst")
    code = "\n".join(l for l in postinst.splitlines() if not l.lstrip().startswith("#"))
    assert "adduser --system" in code and "harbormq" in code
    # Nothing is enabled or started on install; an upgrade only restarts a running service.
    assert not re.search(r"\b(enable|start)\b", code.replace("try-restart", "")), code
    assert "try-restart" in code
    assert "stop harbormq.service" in dpkg_deb("-I", str(deb), "prerm")
    for script in ("postinst", "prerm", "postrm"):
        r = subprocess.run(["sh", "-n"], input=dpkg_deb("-I", str(deb), script), text=True)
        assert r.returncode == 0, script
