"""Indicators as data: definitions, values per spatial unit, loaders, computed values, reading.

One indicator value belongs to (indicator, level, unit_code, ref_date). Levels and the key of
their units: ``gemeinde`` – ``municipalities.ags`` (8 digits), ``kreis`` – ``counties.ags``
(5 digits), a district level such as ``stadtviertel`` – ``districts.code`` of that level,
``quarter`` – ``quarters.slug``. Missing values are explicit: a row with ``value`` NULL carries a
``missing_reason``; nothing is ever set to 0 because it is unknown.

Open the module of what you need (imports only point down this list, never back):

* :mod:`.provenance` – the notes on a value (derivation, missing reason): stored, read, written
  out in a language;
* :mod:`.definitions` – what an indicator is, the built-in ones, the rule for defaults;
* :mod:`.values` – writing values (COPY + upsert), the load report;
* :mod:`.levels` – spatial levels and their units;
* :mod:`.reading` – the catalogue, default indicators of a level, tables of values;
* :mod:`.computed` – values computed in the database (areas, measures, quarter profiles);
* :mod:`.loaders` – Destatis, Halle's Stadtviertel and everything `quarters data load` adds.

A user's indicator table (CSV) comes in through :mod:`quarters.imports.indicator_tables`;
the source records of all values live in :mod:`quarters.sources`.
"""
