"""From network outputs to detections: pose proposals integration (PPI), NMS, hand and face assignment."""
