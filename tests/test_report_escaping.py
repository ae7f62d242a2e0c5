"""Strings from a dataset never become markup in the report: a crafted robot_type or task name is
shown as text, and the pages run no script at all (a Content-Security-Policy forbids it)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from lerobot_inspect.report import build_report
from lerobot_inspect.report.render import _inert

CRAFTED = "x```\n</pre><script>alert(1)</script><img src=x onerror=alert(2)>\n```"


def test_a_crafted_robot_type_is_text_in_the_audit_page(tmp_path: Path, tiny_root: Path) -> None:
    root = tmp_path / "tiny"
    shutil.copytree(tiny_root, root)
    info_path = root / "meta" / "info.json"
    info = json.loads(info_path.read_text())
    info["robot_type"] = CRAFTED
    info_path.write_text(json.dumps(info))
    result = build_report(root, tmp_path / "out", notebooks=["audit"], progress=None)
    page = (tmp_path / "out" / "audit.html").read_text()
    assert result.pages[0].status == "ok", result.pages[0]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, "the robot_type is shown, as text"
    assert not re.search(r"<script", page, re.I) and "onerror=" not in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    index = (tmp_path / "out" / "index.html").read_text()
    assert not re.search(r"<script", index, re.I)


def test_rendered_markdown_loses_active_elements_and_handlers() -> None:
    markup = ('<p>ok <a href="javascript:alert(1)">x</a></p><script>alert(1)</script><iframe src="x"></iframe>'
              '<img src="data:image/png;base64,AA" onload="alert(3)"><svg><a xlink:href="javascript:1">y</a></svg>')
    cleaned = _inert(markup)
    assert "<script" not in cleaned and "<iframe" not in cleaned and "onload" not in cleaned
    assert "javascript:" not in cleaned and "<p>ok" in cleaned and 'src="data:image/png' in cleaned
