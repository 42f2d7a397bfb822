"""Sub-commands of `lab`, one module per concern; each module defines `register(app: typer.Typer)`."""
