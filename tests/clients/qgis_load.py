"""Load OGC API collections in QGIS (run by Debian's /usr/bin/python3 with python3-qgis).

Usage: qgis_load.py LANDING_URL COLLECTION... ; prints one ``RESULT {json}`` line per
collection. Exits with os._exit: QGIS may crash while shutting down (see NOTES.md).
"""

import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from qgis.core import QgsApplication, QgsVectorLayer, QgsWkbTypes  # noqa: E402

app = QgsApplication([], False)
app.initQgis()
base = sys.argv[1]
for name in sys.argv[2:]:
    layer = QgsVectorLayer(f"url='{base}' typename='{name}'", name, "OAPIF")
    out = {"id": name, "valid": layer.isValid()}
    if layer.isValid():
        out["type"] = QgsWkbTypes.displayString(layer.wkbType())
        out["count"] = layer.featureCount()
        out["fields"] = [f.name() for f in layer.fields()]
        if out["count"] <= 500:
            features = list(layer.getFeatures())
            out["iterated"] = len(features)
            out["feature_types"] = sorted({QgsWkbTypes.displayString(f.geometry().wkbType())
                                           for f in features})
    print("RESULT " + json.dumps(out), flush=True)
sys.stdout.flush()
os._exit(0)
