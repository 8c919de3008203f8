"""qualmon's stream side: event schema, Faust worker, event-time windows, indicators, detectors.

Flow: a Kafka record holds one event or a JSON array of events (:mod:`streams.decode`); each valid
event is de-duplicated by ``event_id``, attributed to its slices (:mod:`streams.slices`) and added
to the open event-time bucket of every slice (:mod:`streams.aggregate`). When the watermark passes
a bucket's end plus the allowed lateness the bucket closes: its indicator values
(:mod:`streams.indicators`) are scored once per (indicator, slice) by a detector
(:mod:`streams.detectors`); a higher score is more anomalous, and every series is scored *before*
it learns the new value.
"""
