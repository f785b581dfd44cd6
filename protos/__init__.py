"""Protocol buffers of Sentiedge. ``.proto`` files sit beside the generated code they
produce, under the import path they are used by (``protos/sentiedge/v1/``).
Regenerate with ``python -m protos.generate``; a test fails when they drift."""
