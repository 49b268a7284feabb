"""The machine a figure was measured on, for results, model cards and benchmarks: CPU model, cores, memory, GPU,
whether bf16 is native (two CPUs both named "AMD EPYC" differ 2-3x here: it decides the precision), versions."""
from __future__ import annotations

import os
import platform


def machine() -> dict:
    import psutil
    import torch

    from crossdistill.common.precision import native_bf16

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "gpu": gpu, "native_bf16": native_bf16(), "torch": torch.__version__, "python": platform.python_version()}


def describe(m: dict) -> str:
    """One line: CPU, cores, memory, and the GPU or whether bf16 is native."""
    hw = f"{m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB"
    if m.get("gpu"):
        hw += f", GPU {m['gpu']}"
    elif "native_bf16" in m:
        hw += ", native bf16 (AVX512-BF16/AMX)" if m["native_bf16"] else ", no native bf16 (fp32)"
    return hw
