"""``python -m control_plane``: the ``control-plane`` command."""

from control_plane.cli import main

raise SystemExit(main())
