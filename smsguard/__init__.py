"""smsguard: an SMS spam filter trained with Keras, exported to LiteRT and ONNX, run on the device."""

__version__ = "0.1.0"
