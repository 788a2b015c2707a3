"""Everything that puts data into the database, one module per kind of input:

* :mod:`.boundaries` – boundary files (GeoJSON, GeoPackage, zipped Shapefile) → municipalities,
  counties or districts (`quarters import boundaries`, the API upload);
* :mod:`.measure_files` – measure files in and out (`quarters import measures`, `quarters export
  measures`, the planner's upload);
* :mod:`.indicator_tables` – a user's indicator table (CSV) (`quarters import indicators`);
* :mod:`.data_load` – `quarters data load`: the catalogue's sources, the BKG boundaries, Halle's
  Stadtviertel, the pilot quarters, then :mod:`.seed` and the indicator loaders;
* :mod:`.seed` – the pilot projects' editions and measures shipped in the geo directory.

Every import checks its file first (:mod:`quarters.safefiles`), refuses with a 4xx naming the
problems, and stores nothing unless all of it can be stored; source records go through
:mod:`quarters.sources`.
"""
