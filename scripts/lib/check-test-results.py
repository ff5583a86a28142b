#!/usr/bin/env python3
"""Fails a test run that passed without running everything.

Usage: check-test-results.py LIST XUNIT...

LIST is `swift test list` output: every test the build holds, one `Target.Suite/test()` a line.
Each XUNIT is a report `swift test --xunit-output` wrote (one for Swift Testing, one for XCTest).
Every listed test must appear there as run and passed: a test that was skipped, failed or never
ran fails the check, and so does a test target of which nothing ran.
"""
import sys
import xml.etree.ElementTree as ElementTree
from collections import Counter


def key(classname, name):
    return (classname.replace("/", "."), name)


def main():
    listed = Counter()
    for line in open(sys.argv[1], encoding="utf-8"):
        line = line.strip()
        if not line or "/" not in line:
            continue
        suite, _, name = line.rpartition("/")
        listed[key(suite, name)] += 1
    if not listed:
        sys.exit("check-test-results: `swift test list` named no tests")

    passed, problems = Counter(), []
    for report in sys.argv[2:]:
        for case in ElementTree.parse(report).getroot().iter("testcase"):
            case_key = key(case.get("classname", ""), case.get("name", ""))
            if case.find("skipped") is not None:
                problems.append("skipped: %s/%s" % case_key)
            elif case.find("failure") is not None or case.find("error") is not None:
                problems.append("failed: %s/%s" % case_key)
            else:
                passed[case_key] += 1

    for test in sorted(listed):
        if passed[test] == 0:
            problems.append("did not run: %s/%s" % test)
    targets = Counter(suite.split(".")[0] for suite, _ in listed)
    ran = Counter(suite.split(".")[0] for suite, _ in passed.elements())
    for target in sorted(targets):
        if ran[target] == 0:
            problems.append("test target %s ran no tests" % target)
    if problems:
        print("\n".join("check-test-results: " + problem for problem in problems), file=sys.stderr)
        sys.exit(1)
    print("check-test-results: all %d tests of %d targets ran and passed" % (sum(listed.values()), len(targets)))


main()
