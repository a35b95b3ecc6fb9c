"""The application layer: everything that runs whole jobs on top of the library — the command
line (:mod:`augcore.apps.cli`, one ``Command`` per subcommand in :mod:`augcore.apps.commands`),
the demo, the reproduction harness and its runners (train, refine, generate, labelled), the
labelled-fraction protocol, selection from a checkpoint and the benchmarks. Nothing below this
layer imports it (docs/architecture.md)."""
