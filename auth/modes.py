"""The authentication modes (af_auth), kept free of ZeroMQ: afserver's supervisor and the
gateway's check read them without loading the CURVE machinery (curve.py)."""

CURVE = "curve"
MODES = ("", CURVE)
