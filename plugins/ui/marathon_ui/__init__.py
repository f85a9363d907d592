"""marathon-ui: Marathon's web UI under ``/ui``, served by marathon-rest."""
