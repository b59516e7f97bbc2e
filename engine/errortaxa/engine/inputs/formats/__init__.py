"""The input formats: one module each, registered with errortaxa.engine.inputs.registry."""
