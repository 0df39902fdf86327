"""Execution-checked suggestions: the function's own checks run on k candidates before one is shown.

The pieces, each in its own module:
- ``site``: which function the cursor is in (works on half-typed documents);
- ``check``: what a check is (a doctest example, an assert in the same file, a test function, a test of
  the repository's coverage map);
- ``test_index``: the workspace's test functions and the names they call (built in a background process);
- ``suite_checks``: the coverage map's tests of a function, run in the repository's own environment;
- ``finder``: the checks of the cursor's function, from the sources above;
- ``job`` + ``in_sandbox``: one candidate document and its checks as one sandbox job (workspace read-only);
- ``verdict``: a sandbox result read strictly ("passes" only when every check ran and passed);
- ``ranker``: the candidate to show (all passing, then most passing, then the model's own ranking);
- ``executor``: sandbox runs off the event loop, bounded, cancellable before they start;
- ``selection``: k candidates (the greedy one first, the others when it fails), checked against a deadline;
- ``checker``: the facade the completer uses (settings, index, coverage map, executor);
- ``note``: what the editor is told (``codeloop/checkResult``).
"""
