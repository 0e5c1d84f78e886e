"""``python -m bench`` (also what ``torchrun -m bench`` runs)."""

from bench.cli import main

raise SystemExit(main())
