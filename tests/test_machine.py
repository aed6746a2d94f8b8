"""machine.py: /proc/cpuinfo parsing, the int8 kernel it implies, and the cached, hostname-free fingerprint."""

from __future__ import annotations

import json
import platform
import socket

from hypothesis import given
from hypothesis import strategies as st

from pytest_autoware_deploy import machine

# Trimmed from real machines: this project's AVX2-only EPYC CI host and the GPU host's Xeon (AVX-512 VNNI, AMX).
EPYC = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
flags\t\t: fpu vme sse4_1 avx f16c fma avx2 bmi2

processor\t: 1
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
flags\t\t: fpu vme sse4_1 avx f16c fma avx2 bmi2
"""
XEON = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse4_1 avx f16c fma avx2 avx512f avx512bw avx512vl avx512_vnni avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8
"""
ALDER_LAKE = """vendor_id\t: GenuineIntel
model name\t: 12th Gen Intel(R) Core(TM) i7-12700
flags\t\t: sse4_1 avx f16c fma avx2 avx_vnni
"""
ARM = """processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp
CPU implementer\t: 0x41
"""


def test_parse_epyc_has_avx2_without_vnni():
    info = machine.parse_cpuinfo(EPYC)
    assert info["model"] == "AMD EPYC" and info["vendor"] == "AuthenticAMD"
    assert info["flags"]["avx2"] and info["flags"]["fma"] and info["flags"]["f16c"]
    assert not any(info["flags"][f] for f in ("avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "amx_bf16"))
    assert machine.int8_kernel(info) == "avx2" and machine.int8_may_saturate(info)


def test_parse_xeon_amx_and_alder_lake_avx_vnni():
    xeon = machine.parse_cpuinfo(XEON)
    assert xeon["flags"]["avx512_vnni"] and xeon["flags"]["amx_int8"] and xeon["flags"]["amx_bf16"]
    assert machine.int8_kernel(xeon) == "amx" and not machine.int8_may_saturate(xeon)
    alder = machine.parse_cpuinfo(ALDER_LAKE)
    assert alder["flags"]["avx_vnni"] and not alder["flags"]["avx512f"]
    assert machine.int8_kernel(alder) == "vnni" and not machine.int8_may_saturate(alder)


def test_parse_arm_features_and_empty_text():
    arm = machine.parse_cpuinfo(ARM)
    assert arm["vendor"] == "0x41" and not any(arm["flags"].values())
    assert machine.int8_kernel(arm) == "other" and not machine.int8_may_saturate(arm)
    empty = machine.parse_cpuinfo("")
    assert empty["model"] is None and set(empty["flags"]) == set(machine.ISA_FLAGS)
    assert machine.int8_kernel({}) == "other"


@given(st.sets(st.sampled_from(machine.ISA_FLAGS + ("sse2", "bmi2", "avx512cd"))), st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters=":"), max_size=40))
def test_parse_reports_exactly_the_listed_flags(flags, model):
    text = f"processor\t: 0\nmodel name\t: {model}\nflags\t\t: {' '.join(sorted(flags))}\n\nprocessor\t: 1\nflags\t: avx512f\n"
    info = machine.parse_cpuinfo(text)
    assert {k for k, v in info["flags"].items() if v} == flags & set(machine.ISA_FLAGS)  # first block only
    assert info["model"] == (model.strip() or None)
    assert machine.int8_may_saturate(info) == (
        "avx2" in flags and not flags & set(machine.VNNI_FLAGS))


def test_cpu_info_of_this_machine_is_cached_copy(tmp_path, monkeypatch):
    first = machine.cpu_info()
    assert set(first) >= {"model", "vendor", "flags", "machine", "int8_kernel", "source"}
    first["flags"]["avx2"] = "edited"
    assert machine.cpu_info()["flags"].get("avx2") != "edited"  # callers cannot poison the cache
    fake = tmp_path / "cpuinfo"
    fake.write_text(XEON)
    monkeypatch.setattr(machine, "_CPUINFO", str(fake))
    monkeypatch.setattr(machine.sys, "platform", "linux")
    assert machine.cpu_info()["model"] == first["model"]  # cached: the file is read once per process
    machine.cache_clear()
    try:
        assert machine.cpu_info()["int8_kernel"] == "amx"
    finally:
        monkeypatch.undo()
        machine.cache_clear()


def test_cpu_info_without_proc_cpuinfo_falls_back_to_platform(monkeypatch):
    monkeypatch.setattr(machine.sys, "platform", "darwin")
    machine.cache_clear()
    try:
        info = machine.cpu_info()
        assert info["source"] == "platform" and info["flags"] == {} and info["int8_kernel"] == "other"
        assert info["model"]  # processor() or machine(): never empty on a real host
    finally:
        monkeypatch.undo()
        machine.cache_clear()


def test_fingerprint_is_json_hostname_free_and_names_versions():
    import numpy
    import onnx
    import onnxruntime
    import torch

    fp = machine.fingerprint()
    assert json.loads(json.dumps(fp)) == fp
    assert fp["versions"]["torch"] == torch.__version__ and fp["versions"]["onnx"] == onnx.__version__
    assert fp["versions"]["onnxruntime"] == onnxruntime.__version__ and fp["versions"]["numpy"] == numpy.__version__
    assert fp["python"] == platform.python_version() and fp["cpu"] == machine.cpu_info()
    assert "CPUExecutionProvider" in fp["onnxruntime_providers"]
    if torch.cuda.is_available():
        assert fp["gpu"][0]["name"] == torch.cuda.get_device_name(0)
        assert fp["gpu"][0]["compute_capability"] == "{}.{}".format(*torch.cuda.get_device_capability(0))
    else:
        assert fp["gpu"] is None
    host = socket.gethostname()
    assert len(host) < 4 or host not in json.dumps(fp)
    fp["versions"]["torch"] = "edited"
    assert machine.fingerprint()["versions"]["torch"] == torch.__version__
