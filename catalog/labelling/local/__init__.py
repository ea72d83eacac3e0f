"""The offline labeller: OpenCV's Haar cascades, or any YOLO-family ONNX detector given with
--model, on images and video frames, answering in Rekognition's shapes, spellings and taxonomy.

Modules: labeller.py (LocalLabeller: images, video frames, the result), cascades.py (Face, Cat,
License Plate from agreeing cascades), onnx.py (YOLOv5/v8/v11/YOLOX outputs), taxonomy.py
(names, parents), boxes.py (pixel boxes), opencv.py (importing cv2 and its cascades).
"""

from catalog.labelling.local.labeller import LABELLER_NAME, LocalLabeller

__all__ = ["LABELLER_NAME", "LocalLabeller"]
