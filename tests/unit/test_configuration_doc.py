"""docs/configuration.md is generated from the settings themselves (their help text and
defaults): this test fails when a setting changes and the page was not regenerated
(`make docs`, which runs this module)."""

import sys
from pathlib import Path

from sentiedge_core.settings_loader import markdown

PAGE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
HEAD = """# Configuration

Generated from the settings (`make docs`); do not edit by hand. Every setting is an
environment variable and a flag of `serve` (a flag beats the variable, which beats the
default); `edge-node serve --help` and `control-plane serve --help` print the same words. A bad
value stops start-up with a message naming the variable.
"""


def page() -> str:
    from control_plane.config import HELP as CP_HELP
    from control_plane.config import PREFIX as CP_PREFIX
    from control_plane.config import CpSettings
    from edge_node.config import HELP as EDGE_HELP
    from edge_node.config import PREFIX as EDGE_PREFIX
    from edge_node.config import EdgeSettings

    text = (f"{HEAD}\n## Edge node (`edge-node serve`)\n\n{markdown(EdgeSettings, EDGE_PREFIX, EDGE_HELP)}\n"
            f"## Control plane (`control-plane serve`)\n\n{markdown(CpSettings, CP_PREFIX, CP_HELP)}")
    # Defaults that are paths inside the checkout (the bundled model) read the same in any clone.
    return text.replace(str(PAGE.parents[1]) + "/", "")


def test_the_configuration_page_is_generated_from_the_settings():
    assert PAGE.read_text() == page(), "docs/configuration.md is stale: run make docs"


def test_every_setting_has_help_text():
    import msgspec

    from control_plane.config import HELP as CP_HELP
    from control_plane.config import CpSettings
    from edge_node.config import HELP as EDGE_HELP
    from edge_node.config import EdgeSettings

    for cls, help_text in ((EdgeSettings, EDGE_HELP), (CpSettings, CP_HELP)):
        missing = [f.name for f in msgspec.structs.fields(cls) if not help_text.get(f.name)]
        assert not missing, f"{cls.__name__}: no help for {missing}"


if __name__ == "__main__":
    PAGE.write_text(page())
    print(f"wrote {PAGE}", file=sys.stderr)
