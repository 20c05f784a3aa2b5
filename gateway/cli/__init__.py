"""``gateway``: the command line. Each area registers its own commands on the root app."""

from __future__ import annotations

import typer

from gateway.cli import audit, policy, queue, sandbox, serve, tokens

__all__ = ["app", "main"]

app = typer.Typer(
    name="gateway",
    help="Policy-as-code gateway for AI agents operating Kubernetes and Palette.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _area in (serve, queue, audit, tokens, sandbox, policy):
    _area.register(app)


def main() -> None:
    app()
