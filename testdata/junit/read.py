# Reads a JUnit XML file with junitparser (Debian: python3-junitparser), as
# CI report tools do, and prints what it understood as JSON: the specs check
# egresslab's --junit files with a real consumer, not with our own parser.
import json
import sys

from junitparser import JUnitXml, TestSuite

doc = JUnitXml.fromfile(sys.argv[1])
suites = [doc] if isinstance(doc, TestSuite) else list(doc)
out = {"tests": 0, "failures": 0, "errors": 0, "cases": []}
for suite in suites:
    out["tests"] += suite.tests
    out["failures"] += suite.failures
    out["errors"] += suite.errors
    for case in suite:
        out["cases"].append({
            "name": case.name,
            "classname": case.classname,
            "results": [{"kind": type(r).__name__, "message": r.message, "type": r.type, "text": r.text}
                        for r in case.result],
        })
print(json.dumps(out))
