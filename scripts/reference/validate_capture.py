"""Validates every line of a capture file against docs/capture.schema.json; prints the failures."""
import json
import pathlib
import sys

import jsonschema

schema = json.loads((pathlib.Path(__file__).parents[2] / "docs" / "capture.schema.json").read_text())
validator = jsonschema.Draft202012Validator(schema)
failures = 0
with open(sys.argv[1], encoding="utf-8") as capture:
    for number, line in enumerate(capture, 1):
        for error in validator.iter_errors(json.loads(line)):
            failures += 1
            print(f"line {number}: {error.message}")
sys.exit(1 if failures else 0)
