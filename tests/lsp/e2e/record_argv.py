"""A stand-in server command for the VS Code test: records the arguments the extension added (``--shared``),
then runs the real language server against the test's engine URL. Usage: record_argv.py OUT URL [ARGS...]"""

import json
import os
import sys

out, url, *added = sys.argv[1:]
with open(out, "w") as handle:
    json.dump(added, handle)
os.execv(sys.executable, [sys.executable, "-m", "codeloop", "lsp", "--engine-url", url])
