#!/usr/bin/python3
"""Parses Prometheus text exposition with the official client's parser (Debian's
python3-prometheus-client) and writes its samples as JSON, for the C++ end-to-end tests.

Usage: prometheus_parse.py METRICS_FILE JSON_FILE
JSON_FILE gets {"families": {name: type}, "samples": [{"name", "labels", "value"}]}, or the
parser's error as {"error": "..."} (and the exit status is 1).
"""

import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families


def main() -> int:
    source, target = sys.argv[1], sys.argv[2]
    with open(source, encoding="utf-8") as f:
        text = f.read()
    try:
        families = {}
        samples = []
        for family in text_string_to_metric_families(text):
            families[family.name] = family.type
            for sample in family.samples:
                value = sample.value
                samples.append({"name": sample.name, "labels": sample.labels,
                                "value": "+Inf" if math.isinf(value) else value})
        result, status = {"families": families, "samples": samples}, 0
    except Exception as error:  # the parser's complaint is the test's failure message
        result, status = {"error": f"{type(error).__name__}: {error}"}, 1
    with open(target, "w", encoding="utf-8") as f:
        json.dump(result, f)
    return status


if __name__ == "__main__":
    sys.exit(main())
