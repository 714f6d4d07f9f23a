"""CLI commands, one module per noun; ``edgebench.cli.COMMANDS`` names the command functions (or the typer
group) of each, imported when the command runs. A command parses its options, calls the library with them
and prints through its environment's console; the commands share ``common`` and never import each other."""
