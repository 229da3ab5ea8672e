"""Who holds which bundle (filled in by the ledger/verdict split)."""
