"""Training DOPE networks by distillation: labels in the JSON schema, targets, losses and the loop (never imported by the library)."""
