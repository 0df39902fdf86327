"""Fill-in-the-middle tasks mined from a repository, checked by the repository's own tests.

- ``source.py``: which files of a repository are its own code (tests, vendored and generated files skipped)
  and the functions in them.
- ``spans.py``: the masked spans an editor sees in a function: its body, a block, the rest of a line.
- ``task.py``: ``FimTask`` (the task format shared with rl/ and the editor's checked suggestions), JSONL
  files, the train / held-out split by file.
- ``target.py``: a repository to mine: a folder, or a SWE-bench instance with its prepared environment.
- ``check.py``: a completion spliced into its file, the task's covering tests run in the sandbox.
- ``miner.py``: ``codeloop tasks mine``: coverage map -> spans -> tasks -> gold check -> report.
- ``completions.py`` / ``infill.py``: completions made by the editor's own path (``lsp.completer``), or by
  llama.cpp's ``/infill`` as llama.vscode asks it and read as it shows it (the peer; ``llama_vscode.py``).
- ``fim.py`` / ``fim_report.py``: ``codeloop eval fim`` (resumable run folder, scores, tests-pass) and the
  side-by-side report.

The command line is in codeloop/commands/tasks.py (``tasks mine``) and codeloop/commands/fim.py (``eval fim``).
"""
