"""quarters: geospatial quarter planning for Halle (Saale) and Gera."""

__version__ = "0.1.0"
