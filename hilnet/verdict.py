"""Check results (filled in by the ledger/verdict split)."""
