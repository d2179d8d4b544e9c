"""Spanish labels of the segment codes staff see (the `label` filter reads them)."""

from portal.segments.models import SEGMENTS

LABELS = {"segment": SEGMENTS}
