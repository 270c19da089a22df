"""Startup: the components built into processes (`assemble`), the `homecare` command (`cli`), the
demo, and the embedded servers a machine with only Python runs the network on (`embedded`,
`infra`). The one package that knows every component; the shared core (`homecare`) knows none."""
