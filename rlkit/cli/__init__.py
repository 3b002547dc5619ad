"""Command-line interface (`rlkit`)."""
