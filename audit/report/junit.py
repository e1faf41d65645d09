"""Render test results as JUnit XML (the format CI systems show as test reports).

One ``<testsuite>`` with a ``<testcase>`` per case: ``classname`` the case file,
``name`` the case name, ``file``/``line`` where it is written, ``time`` in
seconds, and a ``<failure>`` holding the message when it failed. Suite-level
facts (such as row coverage) go in ``<properties>``. Built with ElementTree, so
every value is escaped; pure formatting, no test runs here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from xml.etree import ElementTree as ET


@dataclass(frozen=True)
class JUnitCase:
    """One test case's outcome."""

    name: str
    classname: str
    seconds: float
    failure: str | None = None
    file: str | None = None
    line: int | None = None


def render_junit(suite: str, cases: Sequence[JUnitCase], properties: Mapping[str, str]) -> bytes:
    """A ``<testsuites>`` document (UTF-8 bytes with an XML declaration)."""
    failures = sum(1 for case in cases if case.failure is not None)
    total = sum(case.seconds for case in cases)
    root = ET.Element(
        "testsuites", name=suite, tests=str(len(cases)), failures=str(failures), errors="0", time=f"{total:.6f}"
    )
    element = ET.SubElement(
        root,
        "testsuite",
        name=suite,
        tests=str(len(cases)),
        failures=str(failures),
        errors="0",
        skipped="0",
        time=f"{total:.6f}",
    )
    if properties:
        props = ET.SubElement(element, "properties")
        for key, value in properties.items():
            ET.SubElement(props, "property", name=key, value=value)
    for case in cases:
        attrs = {"name": case.name, "classname": case.classname, "time": f"{case.seconds:.6f}"}
        if case.file is not None:
            attrs["file"] = case.file
        if case.line is not None:
            attrs["line"] = str(case.line)
        node = ET.SubElement(element, "testcase", attrs)
        if case.failure is not None:
            failure = ET.SubElement(node, "failure", message=case.failure.splitlines()[0], type="AssertionError")
            failure.text = case.failure
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"
