"""Domain logic the views share: queries, cached reads, invalidation rules."""
