"""Pure computational core of the transferability analysis (no database, no HTTP).

* :mod:`~quarters.analysis.similarity` — rank units by similarity to a reference unit or an
  external profile, explain the ranking and test its sensitivity to the weights.
* :mod:`~quarters.analysis.typology` — cluster units into named types.
* :mod:`~quarters.analysis.classify` — choropleth classes and localised legend labels.

Importing this package does not import scikit-learn or mapclassify; the submodules do.
"""

from .similarity import SensitivityResult, SimilarityResult, explain, sensitivity, similarity

__all__ = ["SensitivityResult", "SimilarityResult", "explain", "sensitivity", "similarity"]
