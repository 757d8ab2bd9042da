"""One MMRec step-parity spec per file (see step_parity._load_spec_files)."""
