"""`python -m inference` runs the codeloop CLI."""
import sys

from inference.cli import main

sys.exit(main())
