"""One module per file kind; ``registry.py`` lists them."""
