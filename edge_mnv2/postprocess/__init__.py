"""Host-side postprocessing shared by the desktop reference and the device: the same numpy code turns
either one's raw outputs into detections (anchors, box decoding, NMS) or segmentation masks (arg-max)."""
