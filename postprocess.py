"""Post-processing (SPEC §4-6): pose proposals integration, NMS, and linking hands and faces to bodies.

The public face of `dope.postprocessing`, where the code lives. The published module's entry
point, `LCRNet_PPI_improved`, is in lcrnet-v2-improved-ppi/ and calls the same `ppi`.
"""
from dope.postprocessing.assignment import assign, assign_faces, assign_hands
from dope.postprocessing.proposals import POSE_SUBSETS, box_iou_plus1, nms, pose_boxes, ppi

__all__ = ["POSE_SUBSETS", "assign", "assign_faces", "assign_hands", "box_iou_plus1", "nms", "pose_boxes", "ppi"]
