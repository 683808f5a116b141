#!/usr/bin/env python3
"""Scrape a Prometheus text endpoint and parse it with prometheus_client's own parser.

  scrape.py URL    prints one JSON array of [name, labels, value] per sample, or ERROR
"""
import json
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def main():
    try:
        text = urllib.request.urlopen(sys.argv[1], timeout=5).read().decode()
    except OSError as e:
        print("ERROR %s" % e)
        return
    samples = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.append([s.name, s.labels, s.value])
    print(json.dumps(samples))


main()
