#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""contrib/systemd/modelrepo.service, tried as far as a machine without systemd as PID 1
allows:

- `systemd-analyze verify` passes and `systemd-analyze security --offline=true` scores
  its exposure at 3.0 or lower;
- its ExecStart line is run by hand, with the environment of contrib/systemd's
  /etc/default/modelrepo (its sources moved to a credential), a credentials directory and a
  NOTIFY_SOCKET of the test's: serve says READY=1 although the database it names first is
  down (the bundled catalogue answers), SIGHUP (ExecReload) is RELOADING=1, the tokens read
  again, READY=1; SIGTERM is STOPPING=1 and exit 0. No token reaches the log.

    check_unit.py SOURCE_ROOT CLI MAN_PAGE
"""
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

in_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def fail(message):
    print("check_unit: " + message)
    sys.exit(1)


def unit_lines(path):
    out = {}
    for line in open(path):
        line = line.strip()
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, value = line.split("=", 1)
            out.setdefault(key, []).append(value)
    return out


def environment_file(path):
    """KEY=VALUE lines as systemd's EnvironmentFile= reads them (quotes removed)."""
    env = {}
    for line in open(path):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, value = line.split("=", 1)
        env[key] = " ".join(shlex.split(value))
    return env


def http(port, method, path, token=None, body=None):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                     data=body.encode() if body else None)
    if token:
        request.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as e:
        return e.code


def main():
    root, cli, man_page = sys.argv[1:4]
    if not shutil.which("systemd-analyze"):
        print("systemd-analyze is missing: scripts/setup test installs systemd")
        sys.exit(1 if in_ci else 77)
    unit_src = os.path.join(root, "contrib/systemd/modelrepo.service")
    default_src = os.path.join(root, "contrib/systemd/modelrepo.default")
    tmp = tempfile.mkdtemp(prefix="modelrepo-unit-")
    try:
        # The unit as installed, but with the CLI of this build; man finds modelrepo(1) of
        # this build too (verify runs `man` for Documentation=).
        unit = os.path.join(tmp, "modelrepo.service")
        text = open(unit_src).read().replace("/usr/bin/modelrepo", os.path.abspath(cli))
        open(unit, "w").write(text)
        os.makedirs(os.path.join(tmp, "man", "man1"))
        shutil.copy(man_page, os.path.join(tmp, "man", "man1", "modelrepo.1"))
        env = dict(os.environ, MANPATH=os.path.join(tmp, "man"))
        verify = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True,
                                text=True, env=env)
        if verify.returncode != 0 or verify.stderr.strip():
            fail("systemd-analyze verify: " + verify.stderr + verify.stdout)
        security = subprocess.run(["systemd-analyze", "security", "--offline=true", unit],
                                  capture_output=True, text=True, env=env)
        found = re.search(r"Overall exposure level for [^:]+: ([0-9.]+)", security.stdout)
        if not found:
            fail("systemd-analyze security said no exposure: " + security.stdout[-500:])
        exposure = float(found.group(1))
        print(f"systemd-analyze security --offline=true: exposure {exposure}")
        if exposure > 3.0:
            fail(f"exposure {exposure} is over 3.0")

        # ExecStart by hand, as systemd would run it.
        lines = unit_lines(unit)
        for key in ("Type", "ExecReload", "StateDirectory", "LoadCredential", "EnvironmentFile"):
            if key not in lines:
                fail(f"the unit has no {key}=")
        if lines["Type"] != ["notify"]:
            fail("Type= is not notify")
        credentials = os.path.join(tmp, "credentials")
        os.mkdir(credentials, 0o700)
        run_dir = "/run/credentials/modelrepo.service"
        # The database first (down: nothing listens on its port), the bundled catalogue last.
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            closed_port = s.getsockname()[1]
        open(os.path.join(credentials, "modelrepo_sources"), "w").write(
            f"postgresql://app:Unit-Secret-77@127.0.0.1:{closed_port}/models?connect_timeout=2\n"
            "builtin:\n")
        tokens = os.path.join(credentials, "modelrepo_write-tokens")
        open(tokens, "w").write("unit-Token-First\n")
        service_env = environment_file(default_src)
        service_env["MODELREPO_SOURCES_FILE"] = run_dir + "/modelrepo_sources"
        service_env["MODELREPO_SERVE_OPTIONS"] = (
            "--listen 127.0.0.1:0 --token-file " + run_dir + "/modelrepo_write-tokens")
        service_env = {k: v.replace(run_dir, credentials) for k, v in service_env.items()}
        exec_start = lines["ExecStart"][0]
        argv = []
        for word in shlex.split(exec_start):
            if word.startswith("$") and not word.startswith("${"):
                argv += service_env.get(word[1:], "").split()
            else:
                argv.append(word)
        notify_path = os.path.join(tmp, "notify")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(notify_path)
        notify.settimeout(1)
        child_env = {"PATH": "/usr/bin:/bin", "NOTIFY_SOCKET": notify_path,
                     "CREDENTIALS_DIRECTORY": credentials,
                     "LD_LIBRARY_PATH": os.environ.get("LD_LIBRARY_PATH", "")}
        child_env.update(service_env)
        state = os.path.join(tmp, "state")
        os.mkdir(state)
        serve = subprocess.Popen(argv, env=child_env, cwd=state, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        try:
            listening = serve.stdout.readline()
            port_match = re.search(r":(\d+)\s*$", listening)
            if not port_match:
                fail("serve did not say where it listens: " + listening + serve.stderr.read())
            port = int(port_match.group(1))

            def wait_for(wanted, limit=60):
                until = time.monotonic() + limit
                got = []
                while time.monotonic() < until:
                    try:
                        message = notify.recv(4096).decode()
                    except socket.timeout:
                        continue
                    got.append(message)
                    if wanted in message.split("\n"):
                        return message
                fail(f"no {wanted} on NOTIFY_SOCKET within {limit} s (got {got!r})")

            ready = wait_for("READY=1")
            print("serve said: " + ready.replace("\n", " | "))
            if http(port, "GET", "/v1/stats") != 200:
                fail("serve is READY but /v1/stats is not 200")
            body = ('[{"model":"gpt-4o","health":"operational","availability":1,'
                    '"latency_ms":1,"error_rate":0,"region":"unit",'
                    '"checked_at":"2026-01-01T00:00:00Z"}]')
            if http(port, "PUT", "/v1/statuses", "unit-Token-Wrong", body) != 401:
                fail("a wrong token was not refused")
            if http(port, "PUT", "/v1/statuses", "unit-Token-First", body) in (401, 403):
                fail("the token of the credential was refused")

            # systemctl reload: ExecReload sends SIGHUP; the tokens are read again.
            open(tokens, "w").write("unit-Token-Second\n")
            if lines["ExecReload"] != ["/bin/kill -HUP $MAINPID"]:
                fail("ExecReload= is not a SIGHUP: " + str(lines["ExecReload"]))
            serve.send_signal(signal.SIGHUP)
            wait_for("RELOADING=1", 20)
            wait_for("READY=1", 20)
            if http(port, "PUT", "/v1/statuses", "unit-Token-First", body) != 401:
                fail("the old token still works after SIGHUP")
            if http(port, "PUT", "/v1/statuses", "unit-Token-Second", body) in (401, 403):
                fail("the new token does not work after SIGHUP")

            serve.send_signal(signal.SIGTERM)
            wait_for("STOPPING=1", 20)
            code = serve.wait(timeout=30)
            log = serve.stderr.read()
            if code != 0:
                fail(f"serve exited {code} at SIGTERM: {log}")
            for secret in ("unit-Token-First", "unit-Token-Second", "Unit-Secret-77"):
                if secret in log or secret in listening:
                    fail(f"a secret reached serve's log: {log}")
        finally:
            if serve.poll() is None:
                serve.kill()
                serve.wait()
        print("the unit verifies, scores at most 3.0, and its ExecStart is ready with the "
              "database down, reloads the tokens at SIGHUP and stops at SIGTERM")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
