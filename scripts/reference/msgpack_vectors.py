"""MessagePack vectors from the reference implementation (msgpack-python): each line is a case's
name, the bytes msgpack-python writes for it (hex), and what the value is, as JSON, with integers
exact, bytes as {"$binary": base64}, float32 values as the shortest text of the float32 (Python
prints the float64 it widens to; the test compares the value, not that text) and map keys in order.
The Swift tests decode the bytes, compare, and encode the value back to the same bytes."""
import base64
import json
import struct
import sys

import msgpack


def as_json(value):
    if isinstance(value, bytes):
        return {"$binary": base64.b64encode(value).decode()}
    if isinstance(value, list):
        return [as_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else k: as_json(v) for k, v in value.items()}
    if isinstance(value, msgpack.ExtType):
        return {"$ext": {"type": value.code, "data": base64.b64encode(value.data).decode()}}
    return value


def main():
    cases = {
        "small ints": [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1],
        "negative ints": [-1, -32, -33, -128, -129, -32768, -32769, -2**31, -2**31 - 1, -2**63],
        "beyond 2^53": [2**53 + 1, 12345678901234567890, -(2**53) - 1],
        "floats": [0.1, -0.0, 1.5, 1e300, 5e-324, 123456789.125],
        "strings": ["", "a", "caf\u00e9", "\U0001f600", "x" * 31, "x" * 32, "y" * 255, "y" * 256, "z" * 65536],
        "binary": [b"", b"\x00\xff", b"b" * 256, b"c" * 65536],
        "nested": {"a": [1, {"b": None}], "t": True, "f": False},
        "long array": list(range(20)),
        "long map": {f"k{i}": i for i in range(20)},
        "int keys": {1: "one", 2: "two"},
        "packet": {"type": 2, "data": ["chat", {"n": 12345678901234567890}, b"\x01\x02"], "nsp": "/", "id": 7},
        "ext": msgpack.ExtType(5, b"\x01\x02\x03\x04"),
        "ext odd": msgpack.ExtType(100, b"abc"),
    }
    for name, value in cases.items():
        packed = msgpack.packb(value, use_bin_type=True)
        print(json.dumps({"name": name, "hex": packed.hex(), "json": as_json(value)}))
    # float32 is never written by msgpack-python's packb for a Python float: pack it by hand.
    for number in [0.1, 3.4028234663852886e38, -2.5]:
        packed = b"\xca" + struct.pack(">f", number)
        unpacked = msgpack.unpackb(packed)
        print(json.dumps({"name": f"float32 {number}", "hex": packed.hex(), "float32": unpacked}))


if __name__ == "__main__":
    sys.exit(main())
