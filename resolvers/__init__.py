"""Query and mutation logic: read arguments and context, call graph/ storage/ fanout/."""
