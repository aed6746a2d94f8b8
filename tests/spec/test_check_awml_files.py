"""tools/check_awml_files.py over the mirrored AWML tree: every file gets a row, none crashes the loader."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .awml_workspace import HERE

TOOL = Path(__file__).resolve().parents[2] / "tools" / "check_awml_files.py"


def _tool():
    spec = importlib.util.spec_from_file_location("check_awml_files", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_check_awml_files_over_the_mirrored_tree(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(HERE / "site"))  # the mmpretrain stand-in: package-scoped bases resolve
    tool = _tool()
    rows = tool.run([HERE / "awml"], build=False)
    by_file = {str(r["file"].relative_to(HERE / "awml")): r for r in rows}
    assert not [r for r in rows if r["result"].startswith("CRASH")]
    frnet = by_file["projects/FRNet/configs/deploy/t4dataset/frnet_tensorrt_dynamic.py"]
    assert (frnet["kind"], frnet["what"], frnet["result"]) == ("deploy", "frnet_script", "ok")
    assert "_base_" in frnet["unused"]
    short = by_file["projects/CenterPoint/configs/t4dataset/CenterPoint-ShortRange/"
                    "pillar_016_second_secfpn_2xb8_50m_base.py"]
    assert short["result"] == "ok" and short["what"] == "CenterPoint -> centerpoint"
    base = by_file["projects/CenterPoint/configs/default/second_secfpn_base.py"]
    assert base["result"].startswith("refused: ") and "partial config" in base["result"]
    out = tmp_path / "table.md"
    assert tool.main([str(HERE / "awml"), "--no-build", "--markdown", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("| tree | file | kind |") and "deploy configs: " in text and str(HERE) not in text
