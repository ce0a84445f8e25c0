"""snnp's zoo of trained models (installed as ``snnp.models_zoo``); see README.md here."""
